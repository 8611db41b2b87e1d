package scheduler_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"

	"github.com/skiff-sh/skiff/internal/scheduler"
	"github.com/skiff-sh/skiff/internal/server"
	"github.com/skiff-sh/skiff/internal/testenv"
)

// These tests run the scheduler against a real server; they are in the
// external test package because the server imports the scheduler.

const wait = 20 * time.Second

// start starts a server without its own scheduler (and controllers) and
// runs one under test against it.
func start(t *testing.T) *testenv.Env {
	t.Helper()
	env := testenv.Start(t, func(o *server.Options) { o.DisableControllers = true })
	startScheduler(t, env)
	return env
}

func startScheduler(t *testing.T, env *testenv.Env) {
	t.Helper()
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	s := scheduler.New(env.Client, factory)
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	// Cleanups run last-registered first: the scheduler stops before the server.
	t.Cleanup(func() {
		cancel()
		<-done
		factory.Shutdown()
	})
}

func node(name, cpu, memory string, opts ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(cpu),
				corev1.ResourceMemory: resource.MustParse(memory),
				corev1.ResourcePods:   resource.MustParse("110"),
			},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}},
		},
	}
	n.Status.Capacity = n.Status.Allocatable.DeepCopy()
	for _, o := range opts {
		o(n)
	}
	return n
}

func pod(name, cpu string, opts ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "busybox",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}},
		}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func create(t *testing.T, env *testenv.Env, objs ...any) {
	t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.Node:
			_, err = env.Client.CoreV1().Nodes().Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Pod:
			_, err = env.Client.CoreV1().Pods(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		default:
			t.Fatalf("cannot create %T", o)
		}
		if err != nil {
			t.Fatalf("create: %v", err)
		}
	}
}

func getPod(t *testing.T, env *testenv.Env, name string) *corev1.Pod {
	t.Helper()
	p, err := env.Client.CoreV1().Pods(metav1.NamespaceDefault).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s: %v", name, err)
	}
	return p
}

// waitBound waits for the pod to be bound and returns its node.
func waitBound(t *testing.T, env *testenv.Env, name string) string {
	t.Helper()
	var nodeName string
	testenv.Eventually(t, wait, "pod "+name+" bound", func() bool {
		nodeName = getPod(t, env, name).Spec.NodeName
		return nodeName != ""
	})
	return nodeName
}

func scheduledCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// waitUnschedulable waits for PodScheduled=False, reason Unschedulable, and
// a FailedScheduling event, both with the message want.
func waitUnschedulable(t *testing.T, env *testenv.Env, name, want string) {
	t.Helper()
	var got string
	testenv.Eventually(t, wait, "pod "+name+" unschedulable", func() bool {
		c := scheduledCondition(getPod(t, env, name))
		if c == nil {
			return false
		}
		got = c.Message
		return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && c.Message == want
	})
	waitEvent(t, env, name, corev1.EventTypeWarning, scheduler.EventFailedScheduling, want)
	if p := getPod(t, env, name); p.Spec.NodeName != "" {
		t.Fatalf("unschedulable pod bound to %s (condition message %q)", p.Spec.NodeName, got)
	}
}

func waitEvent(t *testing.T, env *testenv.Env, podName, typ, reason, message string) {
	t.Helper()
	var seen []string
	testenv.Eventually(t, wait, fmt.Sprintf("%s event %q on %s (seen %q)", reason, message, podName, seen), func() bool {
		list, err := env.Client.CoreV1().Events(metav1.NamespaceDefault).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list events: %v", err)
		}
		seen = seen[:0]
		for _, e := range list.Items {
			if e.InvolvedObject.Kind != "Pod" || e.InvolvedObject.Name != podName {
				continue
			}
			seen = append(seen, e.Reason+": "+e.Message)
			if e.Type == typ && e.Reason == reason && e.Message == message && e.Source.Component == scheduler.SchedulerName {
				return true
			}
		}
		return false
	})
}

func TestBindsPodToAFittingNode(t *testing.T) {
	env := start(t)
	create(t, env, node("small", "1", "4Gi"), node("big", "4", "4Gi"), pod("web", "2"))

	if got := waitBound(t, env, "web"); got != "big" {
		t.Fatalf("bound to %s, want big", got)
	}
	if c := scheduledCondition(getPod(t, env, "web")); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("PodScheduled = %+v, want True", c)
	}
	waitEvent(t, env, "web", corev1.EventTypeNormal, scheduler.EventScheduled, "Successfully assigned default/web to big")
}

func TestUnschedulablePodWaitsAndIsPlacedWhenANodeIsAdded(t *testing.T) {
	env := start(t)
	create(t, env, node("a", "1", "4Gi"), node("b", "1", "4Gi"), pod("huge", "8"))

	waitUnschedulable(t, env, "huge", "0/2 nodes are available: 2 Insufficient cpu.")

	create(t, env, node("big", "16", "64Gi"))
	if got := waitBound(t, env, "huge"); got != "big" {
		t.Fatalf("bound to %s, want big", got)
	}
	if c := scheduledCondition(getPod(t, env, "huge")); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("PodScheduled = %+v, want True after binding", c)
	}
}

func TestPodIsPlacedWhenAnotherIsDeleted(t *testing.T) {
	env := start(t)
	create(t, env, node("only", "1", "4Gi"), pod("first", "800m"))
	waitBound(t, env, "first")
	create(t, env, pod("second", "800m"))
	waitUnschedulable(t, env, "second", "0/1 nodes are available: 1 Insufficient cpu.")

	// No agent runs to confirm a graceful deletion, so delete at once.
	now := int64(0)
	if err := env.Client.CoreV1().Pods(metav1.NamespaceDefault).Delete(context.Background(), "first", metav1.DeleteOptions{GracePeriodSeconds: &now}); err != nil {
		t.Fatal(err)
	}
	if got := waitBound(t, env, "second"); got != "only" {
		t.Fatalf("bound to %s", got)
	}
}

func TestSpreadsReplicaSetPodsOverNodes(t *testing.T) {
	env := start(t)
	ctx := context.Background()
	// Node a is the emptier by share, so least-allocated alone would put
	// both replicas there; spreading by owner sends the second to b.
	create(t, env, node("a", "8", "16Gi"), node("b", "4", "16Gi"))
	labels := map[string]string{"app": "web"}
	replicas := int32(2)
	rs, err := env.Client.AppsV1().ReplicaSets(metav1.NamespaceDefault).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owned := func(p *corev1.Pod) {
		p.Labels = labels
		p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}
	}
	create(t, env, pod("web-1", "100m", owned))
	first := waitBound(t, env, "web-1")
	create(t, env, pod("web-2", "100m", owned))
	second := waitBound(t, env, "web-2")
	if first != "a" || second != "b" {
		t.Fatalf("replicas on %s and %s, want a then b", first, second)
	}
}

func TestHonoursTaintsAndNodeSelectors(t *testing.T) {
	env := start(t)
	gpu := func(n *corev1.Node) {
		n.Labels["gpu"] = "true"
		n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	}
	ssd := func(n *corev1.Node) { n.Labels["disk"] = "ssd" }
	create(t, env, node("gpu", "8", "16Gi", gpu), node("ssd", "2", "4Gi", ssd), node("plain", "2", "4Gi"))

	onGPU := func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"gpu": "true"} }
	tolerates := func(p *corev1.Pod) {
		p.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	}
	onSSD := func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }
	create(t, env, pod("wants-ssd", "100m", onSSD), pod("trainer", "100m", onGPU, tolerates), pod("intruder", "100m", onGPU))
	// The gpu node is by far the emptiest, yet untolerating pods never land there.
	for i := range 6 {
		create(t, env, pod(fmt.Sprintf("plain-%d", i), "100m"))
	}

	if got := waitBound(t, env, "wants-ssd"); got != "ssd" {
		t.Errorf("wants-ssd on %s", got)
	}
	if got := waitBound(t, env, "trainer"); got != "gpu" {
		t.Errorf("trainer on %s", got)
	}
	for i := range 6 {
		if got := waitBound(t, env, fmt.Sprintf("plain-%d", i)); got == "gpu" {
			t.Errorf("plain-%d landed on the tainted node", i)
		}
	}
	waitUnschedulable(t, env, "intruder",
		"0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 node(s) didn't match Pod's node affinity/selector.")
}

func TestLeavesOtherSchedulersPodsAlone(t *testing.T) {
	env := start(t)
	create(t, env, node("n", "4", "4Gi"),
		pod("custom", "100m", func(p *corev1.Pod) { p.Spec.SchedulerName = "my-scheduler" }),
		pod("mine", "100m"))
	waitBound(t, env, "mine")
	// "mine" was created after "custom"; by now "custom" would have been bound.
	if p := getPod(t, env, "custom"); p.Spec.NodeName != "" || scheduledCondition(p) != nil {
		t.Fatalf("pod for another scheduler touched: node %q, conditions %+v", p.Spec.NodeName, p.Status.Conditions)
	}
}
