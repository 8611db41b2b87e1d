package endpointutil

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

func TestServiceHandlerEnqueuesTheService(t *testing.T) {
	var got []string
	h := ServiceHandler(func(k string) { got = append(got, k) })
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}
	h.OnAdd(svc, false)
	h.OnUpdate(svc, svc)
	h.OnDelete(svc)
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/gone", Obj: svc})
	if want := []string{"ns/web", "ns/web", "ns/web", "ns/gone"}; !slices.Equal(got, want) {
		t.Errorf("enqueued %v, want %v", got, want)
	}
}

func TestAddServiceAndPodHandlersEnqueuesServicesForServiceAndPodEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	keys := make(chan string, 10)
	AddServiceAndPodHandlers(factory.Core().V1().Services(), factory.Core().V1().Pods(), func(k string) { keys <- k })
	factory.Start(ctx.Done())
	defer factory.Shutdown() // runs after cancel: Shutdown waits for the informers to stop
	defer cancel()
	factory.WaitForCacheSync(ctx.Done())

	next := func(what string) string {
		t.Helper()
		select {
		case k := <-keys:
			return k
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: nothing enqueued", what)
			return ""
		}
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}}
	if _, err := client.CoreV1().Services("ns").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if k := next("service added"); k != "ns/web" {
		t.Fatalf("service added: enqueued %q, want ns/web", k)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Labels: map[string]string{"app": "web"}}}
	if _, err := client.CoreV1().Pods("ns").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if k := next("pod added"); k != "ns/web" {
		t.Fatalf("pod added: enqueued %q, want ns/web", k)
	}
}
