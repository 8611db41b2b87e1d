package podgc

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/skiff-sh/skiff/internal/testenv"
)

func pod(name, node string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
}

// TestCollectsPodsNothingElseWillFinish runs the collector against a server
// without agents: a pod bound to a node that does not exist, a pod stuck
// terminating on an out-of-service node, and finished pods beyond the
// threshold are deleted; a pod on a live node stays.
func TestCollectsPodsNothingElseWillFinish(t *testing.T) {
	period, quarantine = 100*time.Millisecond, 300*time.Millisecond
	env := testenv.Start(t)
	ctx := context.Background()
	cs := env.Client
	mkNode := func(name string, ready corev1.ConditionStatus, taints ...corev1.Taint) {
		n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Taints: taints}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
		if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mkNode("live", corev1.ConditionTrue)
	mkNode("down", corev1.ConditionUnknown, corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute})
	create := func(p *corev1.Pod) *corev1.Pod {
		got, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	create(pod("on-live", "live"))
	create(pod("orphan", "ghost"))
	create(pod("stuck", "down"))
	// No agent finishes it: it stays terminating for its grace period.
	if err := cs.CoreV1().Pods("default").Delete(ctx, "stuck", metav1.DeleteOptions{GracePeriodSeconds: new(int64(300))}); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		p := create(pod(fmt.Sprintf("done-%d", i), "live"))
		p.Status.Phase = corev1.PodSucceeded
		if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	factory := informers.NewSharedInformerFactory(cs, 0)
	c := NewController(cs, factory, 2)
	env.Run(t, factory, c.Run)
	exists := func(name string) bool {
		_, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		return !apierrors.IsNotFound(err)
	}
	testenv.Eventually(t, 10*time.Second, "orphaned and stuck pods deleted", func() bool {
		return !exists("orphan") && !exists("stuck")
	})
	testenv.Eventually(t, 10*time.Second, "finished pods cut to the threshold", func() bool {
		n := 0
		for i := range 4 {
			if exists(fmt.Sprintf("done-%d", i)) {
				n++
			}
		}
		return n == 2
	})
	if !exists("on-live") {
		t.Fatal("a pod on a live node was deleted")
	}
}

// TestForceDeleteKeepsOneDisruptionTarget: a pod that taint eviction already
// marked gets its DisruptionTarget condition replaced, not a second one.
func TestForceDeleteKeepsOneDisruptionTarget(t *testing.T) {
	p := pod("evicted", "ghost")
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "DeletionByTaintManager"}}
	cs := fake.NewClientset(p)
	c := NewController(cs, informers.NewSharedInformerFactory(cs, 0), 2)
	c.forceDelete(context.Background(), p, "node ghost is gone")
	var got *corev1.Pod
	for _, a := range cs.Actions() {
		if a.Matches("update", "pods") && a.GetSubresource() == "status" {
			got = a.(clienttesting.UpdateAction).GetObject().(*corev1.Pod)
		}
	}
	if got == nil {
		t.Fatalf("no status update among %v", cs.Actions())
	}
	n := 0
	for _, cond := range got.Status.Conditions {
		if cond.Type == corev1.DisruptionTarget {
			n++
			if cond.Reason != "DeletionByPodGC" {
				t.Errorf("reason %q, want DeletionByPodGC", cond.Reason)
			}
		}
	}
	if n != 1 || got.Status.Phase != corev1.PodFailed {
		t.Fatalf("conditions %v phase %s, want one DisruptionTarget and Failed", got.Status.Conditions, got.Status.Phase)
	}
}
