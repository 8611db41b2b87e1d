package deployment

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
)

// syncOnce runs one sync against a fake clientset whose informer caches
// hold the given objects, and returns the write actions taken.
func syncOnce(t *testing.T, d *appsv1.Deployment, rss ...*appsv1.ReplicaSet) ([]core.Action, *fake.Clientset) {
	t.Helper()
	objs := []any{d}
	client := fake.NewClientset(d)
	for _, rs := range rss {
		if err := client.Tracker().Add(rs); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, rs)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	c := NewController(client, factory)
	defer c.events.Stop()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *appsv1.Deployment:
			err = factory.Apps().V1().Deployments().Informer().GetIndexer().Add(o)
		case *appsv1.ReplicaSet:
			err = factory.Apps().V1().ReplicaSets().Informer().GetIndexer().Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	client.ClearActions()
	if err := c.sync(context.Background(), d.Namespace+"/"+d.Name); err != nil {
		t.Fatalf("sync: %v", err)
	}
	var writes []core.Action
	for _, a := range client.Actions() {
		if a.GetVerb() != "list" && a.GetVerb() != "watch" && a.GetVerb() != "get" {
			writes = append(writes, a)
		}
	}
	return writes, client
}

func defaultedDeployment(n int32) *appsv1.Deployment {
	d := newDeployment("web", n, "nginx:1")
	d.UID, d.Generation = types.UID("web-uid"), 1
	surge, unavail := intstr.FromString("25%"), intstr.FromString("25%")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavail}}
	d.Spec.ProgressDeadlineSeconds, d.Spec.RevisionHistoryLimit = new(int32(600)), new(int32(10))
	return d
}

func verbsAndResources(actions []core.Action) []string {
	var out []string
	for _, a := range actions {
		r := a.GetResource().Resource
		if a.GetSubresource() != "" {
			r += "/" + a.GetSubresource()
		}
		out = append(out, a.GetVerb()+" "+r)
	}
	return out
}

func TestSyncCreatesReplicaSetForNewDeployment(t *testing.T) {
	d := defaultedDeployment(3)
	actions, _ := syncOnce(t, d)
	got := verbsAndResources(actions)
	// Create, record the revision, record NewReplicaSetCreated, then the rollout status.
	want := []string{"create replicasets", "update deployments", "update deployments/status", "update deployments/status"}
	if len(got) != len(want) {
		t.Fatalf("actions = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("actions = %v, want %v", got, want)
		}
	}
	rs := actions[0].(core.CreateAction).GetObject().(*appsv1.ReplicaSet)
	if rs.Name != rsForTemplate(d) || *rs.Spec.Replicas != 3 || rs.Annotations[RevisionAnnotation] != "1" {
		t.Errorf("created %s replicas %d annotations %v", rs.Name, *rs.Spec.Replicas, rs.Annotations)
	}
	st := actions[2].(core.UpdateAction).GetObject().(*appsv1.Deployment)
	if c := GetCondition(st.Status, appsv1.DeploymentProgressing); c == nil || c.Reason != NewReplicaSetReason ||
		c.Message != `Created new replica set "`+rs.Name+`"` {
		t.Errorf("Progressing = %+v", c)
	}
}

func TestSyncScalesUpNewReplicaSetWithinSurge(t *testing.T) {
	d := defaultedDeployment(4)
	d.Annotations = map[string]string{RevisionAnnotation: "2"}
	old := rs("web-old", 4, 4, 0)
	old.Namespace, old.Labels = ns, map[string]string{"app": "web"}
	old.Annotations = map[string]string{RevisionAnnotation: "1", DesiredReplicasAnnotation: "4", MaxReplicasAnnotation: "5"}
	old.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(d, controllerKind)}
	old.Spec.Template = *d.Spec.Template.DeepCopy()
	old.Spec.Template.Spec.Containers[0].Image = "nginx:0"
	newRS := rs(rsForTemplate(d), 0, 0, 1)
	newRS.Namespace, newRS.Labels = ns, map[string]string{"app": "web"}
	newRS.Annotations = map[string]string{RevisionAnnotation: "2", DesiredReplicasAnnotation: "4", MaxReplicasAnnotation: "5"}
	newRS.OwnerReferences = old.OwnerReferences
	newRS.Spec.Template = *d.Spec.Template.DeepCopy()
	actions, _ := syncOnce(t, d, old, newRS)
	if len(actions) == 0 {
		t.Fatal("no actions")
	}
	var rsUpdates []*appsv1.ReplicaSet
	for _, a := range actions {
		if a.GetResource().Resource == "replicasets" && a.GetVerb() == "update" {
			rsUpdates = append(rsUpdates, a.(core.UpdateAction).GetObject().(*appsv1.ReplicaSet))
		}
	}
	if len(rsUpdates) != 1 {
		t.Fatalf("actions = %v, want one replicaset update", verbsAndResources(actions))
	}
	got := rsUpdates[0]
	if got.Name != newRS.Name || *got.Spec.Replicas != 1 {
		t.Errorf("scaled %s to %d, want %s to 1 (maxSurge 25%% of 4)", got.Name, *got.Spec.Replicas, newRS.Name)
	}
}
