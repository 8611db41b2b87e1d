package garbagecollector_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/skiff-sh/skiff/internal/controller/garbagecollector"
	"github.com/skiff-sh/skiff/internal/testenv"
)

const waitFor = 15 * time.Second

// hold is a finalizer the tests put on objects to keep them, deleted but
// present, until the test releases them.
const hold = "skiff.test/hold"

type fixture struct {
	t      *testing.T
	ctx    context.Context
	client kubernetes.Interface
	ns     string
}

// startFixture runs a server with only the garbage collector against it.
// Each subtest gets its own namespace.
func startFixture(t *testing.T) *fixture {
	env := testenv.Start(t)
	mc, err := metadata.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := garbagecollector.NewController(mc, env.Client.Discovery())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx, 4) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return &fixture{t: t, ctx: ctx, client: env.Client}
}

func (f *fixture) in(t *testing.T, ns string) *fixture {
	t.Helper()
	if _, err := f.client.CoreV1().Namespaces().Create(f.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return &fixture{t: t, ctx: f.ctx, client: f.client, ns: ns}
}

func ref(owner *corev1.ConfigMap, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, BlockOwnerDeletion: &block}
}

// create makes a ConfigMap with the given finalizers and owners.
func (f *fixture) create(name string, finalizers []string, owners ...metav1.OwnerReference) *corev1.ConfigMap {
	f.t.Helper()
	cm, err := f.client.CoreV1().ConfigMaps(f.ns).Create(f.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: name, Finalizers: finalizers, OwnerReferences: owners}}, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatalf("create %s: %v", name, err)
	}
	return cm
}

func (f *fixture) get(name string) (*corev1.ConfigMap, bool) {
	f.t.Helper()
	cm, err := f.client.CoreV1().ConfigMaps(f.ns).Get(f.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		f.t.Fatalf("get %s: %v", name, err)
	}
	return cm, true
}

func (f *fixture) delete(name string, policy metav1.DeletionPropagation) {
	f.t.Helper()
	if err := f.client.CoreV1().ConfigMaps(f.ns).Delete(f.ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
		f.t.Fatalf("delete %s: %v", name, err)
	}
}

// release drops the hold finalizer.
func (f *fixture) release(name string) {
	f.t.Helper()
	_, err := f.client.CoreV1().ConfigMaps(f.ns).Patch(f.ctx, name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	if err != nil {
		f.t.Fatalf("release %s: %v", name, err)
	}
}

func (f *fixture) waitGone(names ...string) {
	f.t.Helper()
	testenv.Eventually(f.t, waitFor, fmt.Sprintf("%v deleted", names), func() bool {
		for _, n := range names {
			if _, ok := f.get(n); ok {
				return false
			}
		}
		return true
	})
}

func (f *fixture) waitDeleting(name string) *corev1.ConfigMap {
	f.t.Helper()
	var cm *corev1.ConfigMap
	testenv.Eventually(f.t, waitFor, name+" marked for deletion", func() bool {
		var ok bool
		cm, ok = f.get(name)
		return ok && cm.DeletionTimestamp != nil
	})
	return cm
}

// present asserts names exist (and are not being deleted).
func (f *fixture) present(names ...string) {
	f.t.Helper()
	for _, n := range names {
		cm, ok := f.get(n)
		if !ok || cm.DeletionTimestamp != nil {
			f.t.Fatalf("%s: want present and not deleting, got %+v", n, cm)
		}
	}
}

func TestGarbageCollector(t *testing.T) {
	fx := startFixture(t)

	t.Run("background deletes dependents after the owner", func(t *testing.T) {
		f := fx.in(t, "background")
		owner := f.create("owner", nil)
		f.create("a", nil, ref(owner, false))
		f.create("b", nil, ref(owner, true))
		f.create("bystander", nil)
		f.delete("owner", metav1.DeletePropagationBackground)
		f.waitGone("owner", "a", "b")
		f.present("bystander")
	})

	t.Run("orphan keeps dependents and drops their references", func(t *testing.T) {
		f := fx.in(t, "orphan")
		owner := f.create("owner", nil)
		other := f.create("other", nil)
		f.create("a", nil, ref(owner, true))
		f.create("b", nil, ref(owner, false), ref(other, false))
		f.delete("owner", metav1.DeletePropagationOrphan)
		f.waitGone("owner")
		a, _ := f.get("a")
		b, _ := f.get("b")
		if a == nil || len(a.OwnerReferences) != 0 || a.DeletionTimestamp != nil {
			t.Fatalf("a: want kept without owner references, got %+v", a)
		}
		if b == nil || len(b.OwnerReferences) != 1 || b.OwnerReferences[0].UID != other.UID {
			t.Fatalf("b: want only the reference to other, got %+v", b)
		}
		// Orphans stay orphans: nothing deletes them later.
		f.delete("other", metav1.DeletePropagationOrphan)
		f.waitGone("other")
		f.present("a", "b")
	})

	t.Run("foreground waits for blocking dependents only", func(t *testing.T) {
		f := fx.in(t, "foreground")
		owner := f.create("owner", nil)
		f.create("blocker", []string{hold}, ref(owner, true))
		f.create("loose", []string{hold}, ref(owner, false))
		f.delete("owner", metav1.DeletePropagationForeground)
		// Both dependents are deleted; the owner stays while the blocker does.
		f.waitDeleting("blocker")
		f.waitDeleting("loose")
		o := f.waitDeleting("owner")
		if !slices.Contains(o.Finalizers, metav1.FinalizerDeleteDependents) {
			t.Fatalf("owner finalizers = %v, want foregroundDeletion", o.Finalizers)
		}
		f.release("loose")
		f.waitGone("loose")
		if _, ok := f.get("owner"); !ok {
			t.Fatal("owner deleted while a blocking dependent remains")
		}
		f.release("blocker")
		f.waitGone("blocker", "owner")
	})

	t.Run("dangling owner references", func(t *testing.T) {
		f := fx.in(t, "dangling")
		live := f.create("live", nil)
		ghost := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ghost", UID: "00000000-0000-0000-0000-00000000dead"}}
		// Same name as a live object, another UID: that owner is gone too.
		impostor := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "live", UID: "00000000-0000-0000-0000-00000000beef"}}
		f.create("orphaned", nil, ref(ghost, false))
		f.create("renamed", nil, ref(impostor, true))
		f.create("mixed", nil, ref(ghost, false), ref(live, false))
		f.waitGone("orphaned", "renamed")
		testenv.Eventually(t, waitFor, "mixed keeps only its live owner", func() bool {
			m, ok := f.get("mixed")
			return ok && len(m.OwnerReferences) == 1 && m.OwnerReferences[0].UID == live.UID
		})
		f.present("live", "mixed")
	})

	t.Run("foreground is transitive", func(t *testing.T) {
		// deployment → replicaset → pods, in ConfigMaps.
		f := fx.in(t, "transitive")
		deploy := f.create("deploy", nil)
		rs := f.create("rs", nil, ref(deploy, true))
		f.create("pod-a", []string{hold}, ref(rs, true))
		f.create("pod-b", nil, ref(rs, true))
		f.delete("deploy", metav1.DeletePropagationForeground)
		r := f.waitDeleting("rs")
		if !slices.Contains(r.Finalizers, metav1.FinalizerDeleteDependents) {
			t.Fatalf("rs finalizers = %v, want foregroundDeletion (deleted in the foreground)", r.Finalizers)
		}
		f.waitDeleting("pod-a")
		f.waitGone("pod-b")
		if _, ok := f.get("deploy"); !ok {
			t.Fatal("deploy deleted before its grandchildren")
		}
		if _, ok := f.get("rs"); !ok {
			t.Fatal("rs deleted before its children")
		}
		f.release("pod-a")
		f.waitGone("pod-a", "rs", "deploy")
	})

	t.Run("legacy orphanDependents and deleted owners' existing finalizers", func(t *testing.T) {
		f := fx.in(t, "legacy")
		owner := f.create("owner", nil)
		f.create("a", nil, ref(owner, true))
		yes := true
		if err := f.client.CoreV1().ConfigMaps(f.ns).Delete(f.ctx, "owner", metav1.DeleteOptions{OrphanDependents: &yes}); err != nil { //nolint:staticcheck
			t.Fatal(err)
		}
		f.waitGone("owner")
		testenv.Eventually(t, waitFor, "a orphaned", func() bool {
			a, ok := f.get("a")
			return ok && len(a.OwnerReferences) == 0
		})
		// A dependent that itself carries the orphan finalizer is deleted
		// honouring it: its own dependents survive.
		top := f.create("top", nil)
		mid := f.create("mid", []string{metav1.FinalizerOrphanDependents}, ref(top, false))
		f.create("leaf", nil, ref(mid, false))
		f.delete("top", metav1.DeletePropagationBackground)
		f.waitGone("top", "mid")
		testenv.Eventually(t, waitFor, "leaf orphaned", func() bool {
			l, ok := f.get("leaf")
			return ok && len(l.OwnerReferences) == 0
		})
	})

	t.Run("owners of other kinds and cluster scope", func(t *testing.T) {
		f := fx.in(t, "kinds")
		ns, err := f.client.CoreV1().Namespaces().Create(f.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kinds-owner"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sec, err := f.client.CoreV1().Secrets(f.ns).Create(f.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f.create("of-secret", nil, metav1.OwnerReference{APIVersion: "v1", Kind: "Secret", Name: sec.Name, UID: sec.UID})
		f.create("of-namespace", nil, metav1.OwnerReference{APIVersion: "v1", Kind: "Namespace", Name: ns.Name, UID: ns.UID})
		if err := f.client.CoreV1().Secrets(f.ns).Delete(f.ctx, "s", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		f.waitGone("of-secret")
		f.present("of-namespace")
	})
}
