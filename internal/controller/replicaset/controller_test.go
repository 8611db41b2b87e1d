package replicaset

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	ktesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

// fakeFixture is a controller over a fake clientset whose informer caches are
// filled by hand and never updated: the worst case of a lagging informer.
type fakeFixture struct {
	c       *Controller
	client  *fake.Clientset
	events  *record.FakeRecorder
	factory informers.SharedInformerFactory
}

func newFakeFixture(t *testing.T, objs ...runtime.Object) *fakeFixture {
	t.Helper()
	client := fake.NewClientset(objs...)
	var seq atomic.Int32
	// The fake tracker does not implement generateName.
	client.PrependReactor("create", "pods", func(a ktesting.Action) (bool, runtime.Object, error) {
		if p := a.(ktesting.CreateAction).GetObject().(*corev1.Pod); p.Name == "" {
			p.Name = fmt.Sprintf("%s%d", p.GenerateName, seq.Add(1))
		}
		return false, nil, nil
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	c := NewController(client, factory)
	t.Cleanup(c.events.Stop) // Run, which would stop it, is not called here
	events := record.NewFakeRecorder(100)
	c.recorders = map[kind]record.EventRecorder{kindReplicaSet: events, kindReplicationController: events}
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *appsv1.ReplicaSet:
			err = factory.Apps().V1().ReplicaSets().Informer().GetIndexer().Add(o)
		case *corev1.ReplicationController:
			err = factory.Core().V1().ReplicationControllers().Informer().GetIndexer().Add(o)
		case *corev1.Pod:
			err = factory.Core().V1().Pods().Informer().GetIndexer().Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return &fakeFixture{c: c, client: client, events: events, factory: factory}
}

func (f *fakeFixture) actions(verb, resource string) []ktesting.Action {
	var out []ktesting.Action
	for _, a := range f.client.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == resource {
			out = append(out, a)
		}
	}
	return out
}

func (f *fakeFixture) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-f.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func newRS(name string, replicas int32) *appsv1.ReplicaSet {
	lbls := map[string]string{"app": name}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: "rs-uid", Generation: 1},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbls},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}},
	}
}

func ownedPod(rs *appsv1.ReplicaSet, name string, opts ...podOpt) *corev1.Pod {
	p := pod(name, opts...)
	p.Labels = rs.Spec.Template.Labels
	p.UID = k8stypes.UID("uid-" + name)
	p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(rs, kindReplicaSet.gvk())}
	return p
}

func TestCreatesPodsForNewReplicaSet(t *testing.T) {
	rs := newRS("web", 3)
	f := newFakeFixture(t, rs)
	key := objectKey{kindReplicaSet, "ns", "web"}
	if err := f.c.sync(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	creates := f.actions("create", "pods")
	if len(creates) != 3 {
		t.Fatalf("%d pod creates, want 3", len(creates))
	}
	for _, a := range creates {
		p := a.(ktesting.CreateAction).GetObject().(*corev1.Pod)
		ref := metav1.GetControllerOf(p)
		if p.GenerateName != "web-" || p.Labels["app"] != "web" || ref == nil || ref.UID != rs.UID || !*ref.BlockOwnerDeletion {
			t.Errorf("created pod %s generateName %q labels %v owner %+v", p.Name, p.GenerateName, p.Labels, ref)
		}
	}
	evs := f.drainEvents()
	if len(evs) != 3 || !strings.HasPrefix(evs[0], "Normal SuccessfulCreate Created pod: web-") {
		t.Errorf("events %q", evs)
	}
	if len(f.actions("update", "replicasets")) != 1 {
		t.Errorf("want one status update, actions %v", f.client.Actions())
	}

	// The cache still shows no pods; expectations keep the next sync from creating more.
	if err := f.c.sync(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	if n := len(f.actions("create", "pods")); n != 3 {
		t.Fatalf("%d pod creates after a second sync with a lagging cache, want still 3", n)
	}
}

func TestDeletesLeastValuablePodsWhenScalingDown(t *testing.T) {
	rs := newRS("web", 1)
	ready := ownedPod(rs, "ready", readySince(0))
	pending := ownedPod(rs, "pending", phase(corev1.PodPending))
	notReady := ownedPod(rs, "notready")
	f := newFakeFixture(t, rs, ready, pending, notReady)
	if err := f.c.sync(context.Background(), objectKey{kindReplicaSet, "ns", "web"}); err != nil {
		t.Fatal(err)
	}
	deleted := map[string]bool{}
	for _, a := range f.actions("delete", "pods") {
		deleted[a.(ktesting.DeleteAction).GetName()] = true
	}
	if len(deleted) != 2 || !deleted["pending"] || !deleted["notready"] {
		t.Fatalf("deleted %v, want pending and notready", deleted)
	}
	evs := f.drainEvents()
	if len(evs) != 2 || !strings.HasPrefix(evs[0], "Normal SuccessfulDelete Deleted pod: ") {
		t.Errorf("events %q", evs)
	}
	if f.c.expectations.satisfied(objectKey{kindReplicaSet, "ns", "web"}) {
		t.Error("expectations satisfied before the informer saw the deletions")
	}
}

func TestFailedCreateRecordsEventAndReplicaFailure(t *testing.T) {
	rs := newRS("web", 5)
	f := newFakeFixture(t, rs)
	f.client.PrependReactor("create", "pods", func(ktesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("quota exceeded")
	})
	key := objectKey{kindReplicaSet, "ns", "web"}
	if err := f.c.sync(context.Background(), key); err == nil {
		t.Fatal("sync succeeded, want the create error to requeue")
	}
	if n := len(f.actions("create", "pods")); n != 1 {
		t.Fatalf("%d create attempts, want 1 (slow start stops after the first failing batch)", n)
	}
	if evs := f.drainEvents(); len(evs) != 1 || !strings.HasPrefix(evs[0], "Warning FailedCreate Error creating: ") {
		t.Errorf("events %q", evs)
	}
	updates := f.actions("update", "replicasets")
	if len(updates) != 1 {
		t.Fatalf("%d status updates, want 1", len(updates))
	}
	st := updates[0].(ktesting.UpdateAction).GetObject().(*appsv1.ReplicaSet).Status
	if len(st.Conditions) != 1 || st.Conditions[0].Reason != "FailedCreate" {
		t.Errorf("conditions %+v, want ReplicaFailure FailedCreate", st.Conditions)
	}
	if !f.c.expectations.satisfied(key) {
		t.Error("expectations still wait for creations that never happened")
	}
}
