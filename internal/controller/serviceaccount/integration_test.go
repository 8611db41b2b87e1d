package serviceaccount_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"

	"github.com/skiff-sh/skiff/internal/controller/serviceaccount"
	"github.com/skiff-sh/skiff/internal/testenv"
)

const waitFor = 15 * time.Second

// TestDefaultServiceAccounts: existing and new namespaces get "default",
// a deleted one comes back, a terminating namespace gets none.
func TestDefaultServiceAccounts(t *testing.T) {
	env := testenv.Start(t)
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	c := serviceaccount.NewController(env.Client, factory.Core().V1().Namespaces(), factory.Core().V1().ServiceAccounts())
	env.Run(t, factory, func(ctx context.Context) { c.Run(ctx, 2) })
	ctx := t.Context()
	client := env.Client
	uid := func(ns string) (types.UID, bool) {
		sa, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		if err != nil {
			return "", false
		}
		return sa.UID, true
	}

	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		testenv.Eventually(t, waitFor, "default service account in "+ns, func() bool { _, ok := uid(ns); return ok })
	}
	for _, ns := range []string{"team-a", "doomed"} {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create namespace: %v", err)
		}
		testenv.Eventually(t, waitFor, "default service account in "+ns, func() bool { _, ok := uid(ns); return ok })
	}

	// No namespace controller runs, so "doomed" stays Terminating.
	if err := client.CoreV1().Namespaces().Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete namespace: %v", err)
	}
	testenv.Eventually(t, waitFor, "doomed terminating", func() bool {
		ns, err := client.CoreV1().Namespaces().Get(ctx, "doomed", metav1.GetOptions{})
		return err == nil && ns.Status.Phase == corev1.NamespaceTerminating
	})
	if err := client.CoreV1().ServiceAccounts("doomed").Delete(ctx, "default", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete service account in doomed: %v", err)
	}

	old, _ := uid("team-a")
	if err := client.CoreV1().ServiceAccounts("team-a").Delete(ctx, "default", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete service account: %v", err)
	}
	testenv.Eventually(t, waitFor, "default service account re-created in team-a", func() bool {
		u, ok := uid("team-a")
		return ok && u != old
	})
	// By now the deletion in doomed has been handled too, and left alone.
	if _, err := client.CoreV1().ServiceAccounts("doomed").Get(ctx, "default", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("terminating namespace: default service account re-created (err %v)", err)
	}
}
