package replicaset_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-sh/skiff/internal/controller/replicaset"
	"github.com/skiff-sh/skiff/internal/testenv"
)

const waitFor = 20 * time.Second

// fixture is a real server with this controller running against it.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	client kubernetes.Interface
}

func startFixture(t *testing.T) *fixture {
	env := testenv.Start(t)
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	c := replicaset.NewController(env.Client, factory)
	env.Run(t, factory, func(ctx context.Context) { c.Run(ctx, 4) })
	ctx := t.Context()
	return &fixture{t: t, ctx: ctx, client: env.Client}
}

func (f *fixture) namespace(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	name = strings.Trim(name, "-")
	if _, err := f.client.CoreV1().Namespaces().Create(f.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return name
}

func template(lbls map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: lbls},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

func (f *fixture) createRS(t *testing.T, ns, name string, replicas, minReady int32) *appsv1.ReplicaSet {
	t.Helper()
	lbls := map[string]string{"app": name}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: appsv1.ReplicaSetSpec{
		Replicas: &replicas, MinReadySeconds: minReady,
		Selector: &metav1.LabelSelector{MatchLabels: lbls}, Template: template(lbls),
	}}
	out, err := f.client.AppsV1().ReplicaSets(ns).Create(f.ctx, rs, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create replicaset: %v", err)
	}
	return out
}

// ownedPods lists the active pods controlled by uid.
func (f *fixture) ownedPods(t *testing.T, ns string, uid types.UID) []corev1.Pod {
	t.Helper()
	list, err := f.client.CoreV1().Pods(ns).List(f.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if ref := metav1.GetControllerOf(&p); ref != nil && ref.UID == uid && isPodActive(&p) {
			out = append(out, p)
		}
	}
	return out
}

// waitPods waits until uid controls exactly n pods and the namespace holds total pods.
func (f *fixture) waitPods(t *testing.T, ns string, uid types.UID, n, total int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	testenv.Eventually(t, waitFor, fmt.Sprintf("%d owned pods of %d in %s", n, total, ns), func() bool {
		pods = f.ownedPods(t, ns, uid)
		all, err := f.client.CoreV1().Pods(ns).List(f.ctx, metav1.ListOptions{})
		return err == nil && len(pods) == n && len(all.Items) == total
	})
	return pods
}

func (f *fixture) waitRSStatus(t *testing.T, ns, name, what string, ok func(appsv1.ReplicaSetStatus) bool) {
	t.Helper()
	testenv.Eventually(t, waitFor, what, func() bool {
		rs, err := f.client.AppsV1().ReplicaSets(ns).Get(f.ctx, name, metav1.GetOptions{})
		return err == nil && rs.Status.ObservedGeneration == rs.Generation && ok(rs.Status)
	})
}

// scaleRS sets spec.replicas through the scale subresource, as kubectl scale does.
func (f *fixture) scaleRS(t *testing.T, ns, name string, n int32) {
	t.Helper()
	rss := f.client.AppsV1().ReplicaSets(ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sc, err := rss.GetScale(f.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		sc.Spec.Replicas = n
		_, err = rss.UpdateScale(f.ctx, name, sc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("scale %s to %d: %v", name, n, err)
	}
}

func (f *fixture) markReady(t *testing.T, ns, name string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := f.client.CoreV1().Pods(ns).Get(f.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
			Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
		_, err = f.client.CoreV1().Pods(ns).UpdateStatus(f.ctx, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("mark pod %s ready: %v", name, err)
	}
}

func (f *fixture) waitEvent(t *testing.T, ns, object, reason, prefix string) {
	t.Helper()
	testenv.Eventually(t, waitFor, fmt.Sprintf("%s event for %s", reason, object), func() bool {
		evs, err := f.client.CoreV1().Events(ns).List(f.ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == object && e.Reason == reason && strings.HasPrefix(e.Message, prefix) {
				return true
			}
		}
		return false
	})
}

func TestControllerOnRealServer(t *testing.T) {
	f := startFixture(t)

	t.Run("CreatesPodsForNewReplicaSet", func(t *testing.T) {
		ns := f.namespace(t)
		rs := f.createRS(t, ns, "web", 3, 0)
		pods := f.waitPods(t, ns, rs.UID, 3, 3)
		for _, p := range pods {
			ref := metav1.GetControllerOf(&p)
			if ref.Kind != "ReplicaSet" || ref.APIVersion != "apps/v1" || ref.Name != "web" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
				t.Errorf("pod %s owner reference %+v", p.Name, ref)
			}
			if !strings.HasPrefix(p.Name, "web-") || p.Labels["app"] != "web" {
				t.Errorf("pod %s labels %v: want generateName web- and the template's labels", p.Name, p.Labels)
			}
		}
		f.waitRSStatus(t, ns, "web", "status of 3 replicas", func(s appsv1.ReplicaSetStatus) bool {
			return s.Replicas == 3 && s.FullyLabeledReplicas == 3 && s.ReadyReplicas == 0 && s.AvailableReplicas == 0
		})
		f.waitEvent(t, ns, "web", replicaset.ReasonSuccessfulCreate, "Created pod: web-")
	})

	t.Run("ScaleSubresourceUpAndDown", func(t *testing.T) {
		ns := f.namespace(t)
		rs := f.createRS(t, ns, "web", 3, 0)
		f.waitPods(t, ns, rs.UID, 3, 3)
		for _, n := range []int32{5, 1} {
			f.scaleRS(t, ns, "web", n)
			f.waitPods(t, ns, rs.UID, int(n), int(n))
			f.waitRSStatus(t, ns, "web", fmt.Sprintf("status.replicas %d", n), func(s appsv1.ReplicaSetStatus) bool { return s.Replicas == n })
		}
		f.waitEvent(t, ns, "web", replicaset.ReasonSuccessfulDelete, "Deleted pod: web-")
	})

	t.Run("ScaleDownKeepsReadyPods", func(t *testing.T) {
		ns := f.namespace(t)
		rs := f.createRS(t, ns, "web", 3, 0)
		pods := f.waitPods(t, ns, rs.UID, 3, 3)
		f.markReady(t, ns, pods[1].Name)
		f.waitRSStatus(t, ns, "web", "one ready", func(s appsv1.ReplicaSetStatus) bool { return s.ReadyReplicas == 1 })
		f.scaleRS(t, ns, "web", 1)
		left := f.waitPods(t, ns, rs.UID, 1, 1)
		if left[0].Name != pods[1].Name {
			t.Errorf("kept %s, want the ready pod %s", left[0].Name, pods[1].Name)
		}
	})

	t.Run("AdoptsMatchingOrphan", func(t *testing.T) {
		ns := f.namespace(t)
		orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: map[string]string{"app": "web"}}, Spec: template(nil).Spec}
		if _, err := f.client.CoreV1().Pods(ns).Create(f.ctx, orphan, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		rs := f.createRS(t, ns, "web", 2, 0)
		pods := f.waitPods(t, ns, rs.UID, 2, 2)
		found := false
		for _, p := range pods {
			if p.Name == "orphan" {
				ref := metav1.GetControllerOf(&p)
				found = ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion
			}
		}
		if !found {
			t.Errorf("orphan not adopted with blockOwnerDeletion: %v", pods)
		}
	})

	t.Run("ReleasesPodWhoseLabelsChange", func(t *testing.T) {
		ns := f.namespace(t)
		rs := f.createRS(t, ns, "web", 2, 0)
		pods := f.waitPods(t, ns, rs.UID, 2, 2)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			p, err := f.client.CoreV1().Pods(ns).Get(f.ctx, pods[0].Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.Labels = map[string]string{"app": "debug"}
			_, err = f.client.CoreV1().Pods(ns).Update(f.ctx, p, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		after := f.waitPods(t, ns, rs.UID, 2, 3)
		for _, p := range after {
			if p.Name == pods[0].Name {
				t.Errorf("relabelled pod %s still owned", p.Name)
			}
		}
		released, err := f.client.CoreV1().Pods(ns).Get(f.ctx, pods[0].Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(released.OwnerReferences) != 0 {
			t.Errorf("released pod keeps owner references %v", released.OwnerReferences)
		}
	})

	t.Run("ReadyAndAvailableFollowPods", func(t *testing.T) {
		ns := f.namespace(t)
		rs := f.createRS(t, ns, "web", 2, 4)
		pods := f.waitPods(t, ns, rs.UID, 2, 2)
		f.markReady(t, ns, pods[0].Name)
		var seen appsv1.ReplicaSetStatus
		f.waitRSStatus(t, ns, "web", "one ready", func(s appsv1.ReplicaSetStatus) bool { seen = s; return s.ReadyReplicas == 1 })
		if seen.AvailableReplicas != 0 {
			t.Errorf("available %d right after ready, want 0 before minReadySeconds", seen.AvailableReplicas)
		}
		f.waitRSStatus(t, ns, "web", "one available after minReadySeconds", func(s appsv1.ReplicaSetStatus) bool {
			return s.ReadyReplicas == 1 && s.AvailableReplicas == 1
		})
	})

	t.Run("ReplacesDeletedPod", func(t *testing.T) {
		ns := f.namespace(t)
		rs := f.createRS(t, ns, "web", 3, 0)
		pods := f.waitPods(t, ns, rs.UID, 3, 3)
		if err := f.client.CoreV1().Pods(ns).Delete(f.ctx, pods[0].Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, waitFor, "a replacement pod", func() bool {
			now := f.ownedPods(t, ns, rs.UID)
			if len(now) != 3 {
				return false
			}
			for _, p := range now {
				if p.Name == pods[0].Name {
					return false
				}
			}
			return true
		})
	})

	t.Run("ReplacesFailedPod", func(t *testing.T) {
		ns := f.namespace(t)
		rs := f.createRS(t, ns, "web", 2, 0)
		pods := f.waitPods(t, ns, rs.UID, 2, 2)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			p, err := f.client.CoreV1().Pods(ns).Get(f.ctx, pods[0].Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.Status.Phase = corev1.PodFailed
			_, err = f.client.CoreV1().Pods(ns).UpdateStatus(f.ctx, p, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// The failed pod stays (nothing deletes it here) but no longer counts.
		f.waitPods(t, ns, rs.UID, 2, 3)
		f.waitRSStatus(t, ns, "web", "replicas 2", func(s appsv1.ReplicaSetStatus) bool { return s.Replicas == 2 })
	})

	t.Run("ReplicationController", func(t *testing.T) {
		ns := f.namespace(t)
		lbls := map[string]string{"app": "legacy"}
		two := int32(2)
		tmpl := template(lbls)
		rc, err := f.client.CoreV1().ReplicationControllers(ns).Create(f.ctx, &corev1.ReplicationController{
			ObjectMeta: metav1.ObjectMeta{Name: "legacy"},
			Spec:       corev1.ReplicationControllerSpec{Replicas: &two, Selector: lbls, Template: &tmpl},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pods := f.waitPods(t, ns, rc.UID, 2, 2)
		if ref := metav1.GetControllerOf(&pods[0]); ref.Kind != "ReplicationController" || ref.APIVersion != "v1" {
			t.Errorf("owner reference %+v", ref)
		}
		f.markReady(t, ns, pods[0].Name)
		rcs := f.client.CoreV1().ReplicationControllers(ns)
		waitRC := func(what string, ok func(corev1.ReplicationControllerStatus) bool) {
			t.Helper()
			testenv.Eventually(t, waitFor, what, func() bool {
				rc, err := rcs.Get(f.ctx, "legacy", metav1.GetOptions{})
				return err == nil && rc.Status.ObservedGeneration == rc.Generation && ok(rc.Status)
			})
		}
		waitRC("rc status", func(s corev1.ReplicationControllerStatus) bool {
			return s.Replicas == 2 && s.FullyLabeledReplicas == 2 && s.ReadyReplicas == 1 && s.AvailableReplicas == 1
		})
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			sc, err := rcs.GetScale(f.ctx, "legacy", metav1.GetOptions{})
			if err != nil {
				return err
			}
			sc.Spec.Replicas = 1
			_, err = rcs.UpdateScale(f.ctx, "legacy", sc, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("scale rc: %v", err)
		}
		left := f.waitPods(t, ns, rc.UID, 1, 1)
		if left[0].Name != pods[0].Name {
			t.Errorf("kept %s, want the ready pod %s", left[0].Name, pods[0].Name)
		}
		waitRC("rc scaled to 1", func(s corev1.ReplicationControllerStatus) bool { return s.Replicas == 1 && s.ReadyReplicas == 1 })
		f.waitEvent(t, ns, "legacy", replicaset.ReasonSuccessfulDelete, "Deleted pod: legacy-")
	})
}

// isPodActive mirrors the controller's rule: finished or deleted pods do not count.
func isPodActive(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}
