package nodelifecycle_test

import (
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/controller/nodelifecycle"
	"github.com/skiff-sh/skiff/internal/testenv"
)

// grace is the node monitor grace period the tests run with.
const grace = 1500 * time.Millisecond

const waitFor = 15 * time.Second

type fixture struct {
	t      *testing.T
	ctx    context.Context
	client kubernetes.Interface
}

// startFixture runs both controllers of this package against a real server.
func startFixture(t *testing.T) *fixture {
	env := testenv.Start(t)
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	lc := nodelifecycle.NewController(env.Client, factory.Core().V1().Nodes(), factory.Coordination().V1().Leases(), factory.Core().V1().Pods(), grace)
	te := nodelifecycle.NewTaintEviction(env.Client, factory.Core().V1().Nodes(), factory.Core().V1().Pods())
	env.Run(t, factory, func(ctx context.Context) { lc.Run(ctx, 2) }, func(ctx context.Context) { te.Run(ctx, 2) })
	ctx := t.Context()
	return &fixture{t: t, ctx: ctx, client: env.Client}
}

// readyNode registers a node as an agent does: the Node, a Ready status and its Lease.
func (f *fixture) readyNode(name string) {
	f.t.Helper()
	n, err := f.client.CoreV1().Nodes().Create(f.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatalf("create node: %v", err)
	}
	f.postReady(n)
	f.renew(name)
}

// postReady posts a Ready status with a fresh heartbeat.
func (f *fixture) postReady(n *corev1.Node) { f.postStatus(n, corev1.ConditionTrue) }

// postStatus posts the given Ready status with a fresh heartbeat.
func (f *fixture) postStatus(n *corev1.Node, ready corev1.ConditionStatus) {
	f.t.Helper()
	now := metav1.Now()
	n = n.DeepCopy()
	n.Status.Conditions = nil
	for _, c := range []struct {
		t      corev1.NodeConditionType
		status corev1.ConditionStatus
	}{{corev1.NodeReady, ready}, {corev1.NodeMemoryPressure, corev1.ConditionFalse},
		{corev1.NodeDiskPressure, corev1.ConditionFalse}, {corev1.NodePIDPressure, corev1.ConditionFalse}} {
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: c.t, Status: c.status, Reason: "KubeletReady",
			LastHeartbeatTime: now, LastTransitionTime: now})
	}
	if _, err := f.client.CoreV1().Nodes().UpdateStatus(f.ctx, n, metav1.UpdateOptions{}); err != nil {
		f.t.Fatalf("post node status: %v", err)
	}
}

// renew creates or renews the node's Lease.
func (f *fixture) renew(name string) {
	leases := f.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(f.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(f.ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](40), RenewTime: &now}}, metav1.CreateOptions{})
	} else if err == nil {
		l.Spec.RenewTime = &now
		_, err = leases.Update(f.ctx, l, metav1.UpdateOptions{})
	}
	if err != nil && f.ctx.Err() == nil {
		f.t.Errorf("renew lease %s: %v", name, err)
	}
}

// keepRenewing renews name's lease every 200ms until the test ends.
func (f *fixture) keepRenewing(name string) {
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				f.renew(name)
			}
		}
	}()
	f.t.Cleanup(func() { cancel(); <-done })
}

// pod creates a Ready pod bound to node.
func (f *fixture) pod(ns, name, node string, tolerations ...corev1.Toleration) *corev1.Pod {
	f.t.Helper()
	p, err := f.client.CoreV1().Pods(ns).Create(f.ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeName: node, Tolerations: tolerations,
			Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sleep", "3600"}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatalf("create pod %s: %v", name, err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	p, err = f.client.CoreV1().Pods(ns).UpdateStatus(f.ctx, p, metav1.UpdateOptions{})
	if err != nil {
		f.t.Fatalf("pod %s status: %v", name, err)
	}
	return p
}

func (f *fixture) getNode(name string) *corev1.Node {
	f.t.Helper()
	n, err := f.client.CoreV1().Nodes().Get(f.ctx, name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("get node %s: %v", name, err)
	}
	return n
}

// gone reports whether the pod is deleted or being deleted.
func (f *fixture) gone(ns, name string) (*corev1.Pod, bool) {
	p, err := f.client.CoreV1().Pods(ns).Get(f.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, true
	}
	return p, err == nil && p.DeletionTimestamp != nil
}

func hasTaint(n *corev1.Node, key string, effect corev1.TaintEffect) *corev1.Taint {
	for i := range n.Spec.Taints {
		if n.Spec.Taints[i].Key == key && n.Spec.Taints[i].Effect == effect {
			return &n.Spec.Taints[i]
		}
	}
	return nil
}

func condition(n *corev1.Node, t corev1.NodeConditionType) corev1.NodeCondition {
	for _, c := range n.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.NodeCondition{}
}

// TestSilentNodeIsTaintedAndItsPodsEvicted stops renewing one node's lease:
// its conditions go Unknown, it gets the unreachable taints, its pods are
// marked not ready and evicted as their tolerations say; renewing again
// (and posting Ready, as a returning agent does) removes the taints.
func TestSilentNodeIsTaintedAndItsPodsEvicted(t *testing.T) {
	f := startFixture(t)
	f.readyNode("live")
	f.keepRenewing("live")
	f.readyNode("dead") // its lease is never renewed
	ns := "default"
	short := f.pod(ns, "short", "dead", corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
		Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](2)})
	f.pod(ns, "forever", "dead", corev1.Toleration{Operator: corev1.TolerationOpExists})
	f.pod(ns, "defaults", "dead") // admission gives it 300 s
	f.pod(ns, "elsewhere", "live")

	var taint *corev1.Taint
	testenv.Eventually(t, waitFor, "dead node Unknown and tainted unreachable", func() bool {
		n := f.getNode("dead")
		taint = hasTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute)
		return condition(n, corev1.NodeReady).Status == corev1.ConditionUnknown && taint != nil &&
			hasTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule) != nil
	})
	n := f.getNode("dead")
	for _, ct := range []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		c := condition(n, ct)
		if c.Status != corev1.ConditionUnknown || c.Reason != "NodeStatusUnknown" || c.Message != "Kubelet stopped posting node status." {
			t.Errorf("condition %s: %s %s %q", ct, c.Status, c.Reason, c.Message)
		}
	}
	if taint.TimeAdded == nil {
		t.Fatal("unreachable NoExecute taint without timeAdded")
	}
	if live := f.getNode("live"); len(live.Spec.Taints) != 0 || condition(live, corev1.NodeReady).Status != corev1.ConditionTrue {
		t.Fatalf("live node: taints %v, Ready %s", live.Spec.Taints, condition(live, corev1.NodeReady).Status)
	}

	testenv.Eventually(t, waitFor, "NodeNotReady event", func() bool {
		evs, err := f.client.CoreV1().Events("default").List(f.ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.Reason == "NodeNotReady" && e.InvolvedObject.Kind == "Node" && e.InvolvedObject.Name == "dead" {
				return true
			}
		}
		return false
	})

	// The pods on the dead node are marked not ready.
	testenv.Eventually(t, waitFor, "pods on the dead node not ready", func() bool {
		for _, name := range []string{"forever", "defaults"} {
			p, err := f.client.CoreV1().Pods(ns).Get(f.ctx, name, metav1.GetOptions{})
			if err != nil || len(p.Status.Conditions) == 0 || p.Status.Conditions[0].Status != corev1.ConditionFalse {
				return false
			}
		}
		return true
	})

	// "short" tolerates the taint for 2 s from its timeAdded, then goes.
	var evicted *corev1.Pod
	testenv.Eventually(t, waitFor, "pod short evicted", func() bool {
		p, gone := f.gone(ns, "short")
		evicted = p
		return gone
	})
	if evicted != nil {
		if d := evicted.DeletionTimestamp.Sub(taint.TimeAdded.Time); d < 2*time.Second {
			t.Errorf("short deleted %s after the taint, want >= 2s", d)
		}
		found := false
		for _, c := range evicted.Status.Conditions {
			if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == "DeletionByTaintManager" {
				found = true
			}
		}
		if !found {
			t.Errorf("short has no DisruptionTarget condition: %+v", evicted.Status.Conditions)
		}
	}
	testenv.Eventually(t, waitFor, "TaintManagerEviction event for short", func() bool {
		evs, err := f.client.CoreV1().Events(ns).List(f.ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.Reason == "TaintManagerEviction" && e.InvolvedObject.UID == short.UID && strings.Contains(e.Message, "Marking for deletion Pod default/short") {
				return true
			}
		}
		return false
	})
	for _, name := range []string{"forever", "defaults", "elsewhere"} {
		if _, gone := f.gone(ns, name); gone {
			t.Errorf("pod %s was evicted", name)
		}
	}

	// The node comes back: its lease is renewed and it posts Ready.
	f.renew("dead")
	f.postReady(f.getNode("dead"))
	testenv.Eventually(t, waitFor, "recovered node untainted", func() bool {
		return len(f.getNode("dead").Spec.Taints) == 0
	})
	if _, gone := f.gone(ns, "forever"); gone {
		t.Error("pod forever was evicted")
	}
}

// TestUntoleratedTaintEvictsAtOnce: a NoExecute taint a pod does not
// tolerate deletes it at once; a pod tolerating it stays.
func TestUntoleratedTaintEvictsAtOnce(t *testing.T) {
	f := startFixture(t)
	f.readyNode("n1")
	f.keepRenewing("n1")
	f.pod("default", "intolerant", "n1")
	f.pod("default", "tolerant", "n1", corev1.Toleration{Key: "example.com/evict", Operator: corev1.TolerationOpEqual, Value: "yes", Effect: corev1.TaintEffectNoExecute})
	n := f.getNode("n1")
	now := metav1.Now()
	n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "example.com/evict", Value: "yes", Effect: corev1.TaintEffectNoExecute, TimeAdded: &now})
	if _, err := f.client.CoreV1().Nodes().Update(f.ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("taint node: %v", err)
	}
	start := time.Now()
	testenv.Eventually(t, waitFor, "intolerant pod evicted", func() bool {
		_, gone := f.gone("default", "intolerant")
		return gone
	})
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("eviction took %s", d)
	}
	if _, gone := f.gone("default", "tolerant"); gone {
		t.Error("tolerant pod was evicted")
	}
}

// TestNoEvictionsWhenNoNodeIsReady: with every node silent (most likely the
// control plane is the one cut off) nodes go Unknown but get no NoExecute
// taint, so nothing is evicted.
func TestNoEvictionsWhenNoNodeIsReady(t *testing.T) {
	f := startFixture(t)
	f.readyNode("only")
	f.pod("default", "short", "only", corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
		Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](0)})
	testenv.Eventually(t, waitFor, "node Unknown with the NoSchedule taint", func() bool {
		n := f.getNode("only")
		return condition(n, corev1.NodeReady).Status == corev1.ConditionUnknown &&
			hasTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule) != nil
	})
	if n := f.getNode("only"); hasTaint(n, corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute) != nil {
		t.Fatalf("the only node got a NoExecute taint: %v", n.Spec.Taints)
	}
	if _, gone := f.gone("default", "short"); gone {
		t.Fatal("pod evicted while no node is Ready")
	}
}

// TestNotReadyNodeIsTaintedNotReady: a node reporting Ready=False (its agent
// alive) gets the not-ready taints, and loses them when Ready again.
func TestNotReadyNodeIsTaintedNotReady(t *testing.T) {
	f := startFixture(t)
	f.readyNode("n1")
	f.keepRenewing("n1")
	f.readyNode("n2")
	f.keepRenewing("n2")
	f.postStatus(f.getNode("n2"), corev1.ConditionFalse)
	testenv.Eventually(t, waitFor, "n2 tainted not-ready", func() bool {
		n := f.getNode("n2")
		return hasTaint(n, corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute) != nil &&
			hasTaint(n, corev1.TaintNodeNotReady, corev1.TaintEffectNoSchedule) != nil && len(n.Spec.Taints) == 2
	})
	if c := condition(f.getNode("n2"), corev1.NodeReady); c.Status != corev1.ConditionFalse {
		t.Fatalf("a node that reports was marked %s", c.Status)
	}
	f.postReady(f.getNode("n2"))
	testenv.Eventually(t, waitFor, "n2 untainted", func() bool { return len(f.getNode("n2").Spec.Taints) == 0 })
}
