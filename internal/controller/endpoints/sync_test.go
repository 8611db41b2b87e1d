package endpoints

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

// TestForbiddenCreateWarnsButTerminatingNamespaceIsDropped: a create refused
// because the namespace is terminating ends the sync quietly (it can never
// succeed); any other forbidden create is an error with a warning event, as
// upstream reports it, so a broken policy is not hidden.
func TestForbiddenCreateWarnsButTerminatingNamespaceIsDropped(t *testing.T) {
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
			client.PrependReactor("create", "endpoints", func(clienttesting.Action) (bool, runtime.Object, error) {
				err := apierrors.NewForbidden(corev1.Resource("endpoints"), "svc", errors.New("no"))
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
