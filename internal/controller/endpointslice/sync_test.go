package endpointslice

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

// TestSyncWritesOnlyOnChange runs sync against listers and a fake clientset:
// the first sync creates a slice, a sync over the same state writes nothing,
// a sync before the cache shows the slice waits instead of creating a second
// one, and a readiness change is one update.
func TestSyncWritesOnlyOnChange(t *testing.T) {
	client := fake.NewClientset()
	// The fake does not generate names; the server does.
	client.PrependReactor("create", "endpointslices", func(a clienttesting.Action) (bool, runtime.Object, error) {
		s := a.(clienttesting.CreateAction).GetObject().(*discoveryv1.EndpointSlice)
		s.Name, s.UID, s.ResourceVersion = s.GenerateName+"abcde", "slice-uid", "5"
		return false, nil, nil
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	c := NewController(client, factory)
	t.Cleanup(c.recorder.Stop)
	svc := service()
	svc.CreationTimestamp = metav1.Now()
	must(t, factory.Core().V1().Services().Informer().GetIndexer().Add(svc))
	pods := factory.Core().V1().Pods().Informer().GetIndexer()
	must(t, pods.Add(pod("a", "10.0.0.1", false)))
	ctx := context.Background()

	must(t, c.sync(ctx, "ns/svc"))
	if n := len(client.Actions()); n != 1 || !client.Actions()[0].Matches("create", "endpointslices") {
		t.Fatalf("first sync: actions %v, want one create", client.Actions())
	}
	client.ClearActions()
	if err := c.sync(ctx, "ns/svc"); err == nil || len(client.Actions()) != 0 {
		t.Fatalf("sync on a cache without our slice: err %v actions %v, want a requeue and no write", err, client.Actions())
	}

	s, err := client.DiscoveryV1().EndpointSlices("ns").Get(ctx, "svc-abcde", metav1.GetOptions{})
	must(t, err)
	if s.Annotations["endpoints.kubernetes.io/last-change-trigger-time"] == "" {
		t.Fatalf("annotations %v", s.Annotations)
	}
	must(t, factory.Discovery().V1().EndpointSlices().Informer().GetIndexer().Add(s))
	client.ClearActions()
	must(t, c.sync(ctx, "ns/svc"))
	if len(client.Actions()) != 0 {
		t.Fatalf("sync of unchanged state wrote: %v", client.Actions())
	}

	must(t, pods.Update(pod("a", "10.0.0.1", true)))
	must(t, c.sync(ctx, "ns/svc"))
	if n := len(client.Actions()); n != 1 || !client.Actions()[0].Matches("update", "endpointslices") {
		t.Fatalf("after readiness change: actions %v, want one update", client.Actions())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestForbiddenWriteWarnsButTerminatingNamespaceIsDropped: a create refused
// because the namespace is terminating ends the sync quietly (it can never
// succeed), while any other forbidden write is an error with a warning event,
// as upstream reports it, so a broken policy is not hidden.
func TestForbiddenWriteWarnsButTerminatingNamespaceIsDropped(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cause     metav1.CauseType
		wantErr   bool
		wantEvent bool
	}{
		{"terminating namespace", corev1.NamespaceTerminatingCause, false, false},
		{"policy", "", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset()
			client.PrependReactor("create", "endpointslices", func(clienttesting.Action) (bool, runtime.Object, error) {
				err := apierrors.NewForbidden(discoveryv1.Resource("endpointslices"), "", errors.New("no"))
				if tc.cause != "" {
					err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: tc.cause}}
				}
				return true, nil, err
			})
			factory := informers.NewSharedInformerFactory(client, 0)
			c := NewController(client, factory)
			t.Cleanup(c.recorder.Stop)
			events := record.NewFakeRecorder(10)
			c.events = events
			must(t, factory.Core().V1().Services().Informer().GetIndexer().Add(service()))
			must(t, factory.Core().V1().Pods().Informer().GetIndexer().Add(pod("a", "10.0.0.1", true)))

			err := c.sync(context.Background(), "ns/svc")
			if (err != nil) != tc.wantErr {
				t.Fatalf("sync err = %v, want error %v", err, tc.wantErr)
			}
			if got := len(events.Events) > 0; got != tc.wantEvent {
				t.Fatalf("warning event recorded = %v, want %v", got, tc.wantEvent)
			}
		})
	}
}
