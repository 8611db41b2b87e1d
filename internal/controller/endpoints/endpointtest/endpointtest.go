// Package endpointtest is the integration-test fixture the Endpoints and
// EndpointSlice controllers share: a real API server with one controller
// running against it, and helpers that play the scheduler and kubelet by
// writing pods and their status directly.
package endpointtest

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-sh/skiff/internal/testenv"
)

// WaitFor bounds every wait of these tests.
const WaitFor = 15 * time.Second

// Runner is a controller: built on a factory, run until ctx ends.
type Runner interface {
	Run(ctx context.Context, workers int)
}

// Fixture is a real server with one controller running against it.
type Fixture struct {
	Ctx    context.Context
	Client kubernetes.Interface
}

// Start starts a server without its own controllers, and the controller
// newController builds.
func Start(t *testing.T, newController func(kubernetes.Interface, informers.SharedInformerFactory) Runner) *Fixture {
	env := testenv.Start(t)
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	c := newController(env.Client, factory)
	env.Run(t, factory, func(ctx context.Context) { c.Run(ctx, 2) })
	return &Fixture{Ctx: t.Context(), Client: env.Client}
}

// Namespace creates a namespace named after the test.
func (f *Fixture) Namespace(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	name = strings.Trim(name, "-")
	if _, err := f.Client.CoreV1().Namespaces().Create(f.Ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return name
}

// Service creates a Service selecting app=<app> with port http (80 →
// targetPort) and whatever mutate changes.
func (f *Fixture) Service(t *testing.T, ns, name, app string, targetPort intstr.IntOrString, mutate ...func(*corev1.Service)) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"team": "a"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: targetPort}}},
	}
	for _, m := range mutate {
		m(svc)
	}
	out, err := f.Client.CoreV1().Services(ns).Create(f.Ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s: %v", name, err)
	}
	return out
}

// UpdateService applies mutate to the current Service.
func (f *Fixture) UpdateService(t *testing.T, ns, name string, mutate func(*corev1.Service)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc, err := f.Client.CoreV1().Services(ns).Get(f.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(svc)
		_, err = f.Client.CoreV1().Services(ns).Update(f.Ctx, svc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update service %s: %v", name, err)
	}
}

// Pod creates a pod labelled app=<app> bound to node-1 whose container
// offers the named ports, then gives it a running status at ip, ready or not.
func (f *Fixture) Pod(t *testing.T, ns, name, app, ip string, ready bool, ports ...corev1.ContainerPort) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{
			Name: "c", Image: "busybox", Command: []string{"sleep", "3600"}, Ports: ports}}},
	}
	if _, err := f.Client.CoreV1().Pods(ns).Create(f.Ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	return f.SetStatus(t, ns, name, ip, ready)
}

// SetStatus writes a running status at ip with the Ready condition, as the
// kubelet does.
func (f *Fixture) SetStatus(t *testing.T, ns, name, ip string, ready bool) *corev1.Pod {
	t.Helper()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	var out *corev1.Pod
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := f.Client.CoreV1().Pods(ns).Get(f.Ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.HostIP, p.Status.PodIP = ip, ip
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}}
		out, err = f.Client.CoreV1().Pods(ns).UpdateStatus(f.Ctx, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("set status of pod %s: %v", name, err)
	}
	return out
}

// Terminate deletes a pod gracefully: with no kubelet to confirm, it stays
// terminating.
func (f *Fixture) Terminate(t *testing.T, ns, name string) {
	t.Helper()
	if err := f.Client.CoreV1().Pods(ns).Delete(f.Ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete pod %s: %v", name, err)
	}
	testenv.Eventually(t, WaitFor, "pod "+name+" terminating", func() bool {
		p, err := f.Client.CoreV1().Pods(ns).Get(f.Ctx, name, metav1.GetOptions{})
		return err == nil && p.DeletionTimestamp != nil
	})
}

// Remove deletes a pod at once.
func (f *Fixture) Remove(t *testing.T, ns, name string) {
	t.Helper()
	err := f.Client.CoreV1().Pods(ns).Delete(f.Ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))})
	if err != nil {
		t.Fatalf("delete pod %s: %v", name, err)
	}
}

// Port is a named TCP container port.
func Port(name string, n int32) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: n, Protocol: corev1.ProtocolTCP}
}

// Until polls f every 20ms until it reports ok, failing the test after
// WaitFor with what and the last state f described.
func Until(t *testing.T, what string, f func() (last string, ok bool)) {
	t.Helper()
	deadline := time.Now().Add(WaitFor)
	for {
		last, ok := f()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", WaitFor, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
