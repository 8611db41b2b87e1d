package apiserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/internal/testenv"
)

// gcKind creates and reads one kind, for kinds whose default cascade differs.
type gcKind struct {
	path   string // collection path in namespace "default"
	create func(ctx context.Context, env *testenv.Env, name string, finalizers []string) error
	get    func(ctx context.Context, env *testenv.Env, name string) (metav1.Object, error)
}

func podSpec() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "gc"}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
}

var gcKinds = map[string]gcKind{
	"configmap": {
		path: "/api/v1/namespaces/default/configmaps/",
		create: func(ctx context.Context, env *testenv.Env, name string, fs []string) error {
			_, err := env.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: fs}}, metav1.CreateOptions{})
			return err
		},
		get: func(ctx context.Context, env *testenv.Env, name string) (metav1.Object, error) {
			return env.Client.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
		},
	},
	"job": {
		path: "/apis/batch/v1/namespaces/default/jobs/",
		create: func(ctx context.Context, env *testenv.Env, name string, fs []string) error {
			_, err := env.Client.BatchV1().Jobs("default").Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: fs},
				Spec: batchv1.JobSpec{Template: podSpec()}}, metav1.CreateOptions{})
			return err
		},
		get: func(ctx context.Context, env *testenv.Env, name string) (metav1.Object, error) {
			return env.Client.BatchV1().Jobs("default").Get(ctx, name, metav1.GetOptions{})
		},
	},
	"rc": {
		path: "/api/v1/namespaces/default/replicationcontrollers/",
		create: func(ctx context.Context, env *testenv.Env, name string, fs []string) error {
			t := podSpec()
			t.Spec.RestartPolicy = corev1.RestartPolicyAlways
			_, err := env.Client.CoreV1().ReplicationControllers("default").Create(ctx, &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: fs},
				Spec: corev1.ReplicationControllerSpec{Selector: t.Labels, Template: &t}}, metav1.CreateOptions{})
			return err
		},
		get: func(ctx context.Context, env *testenv.Env, name string) (metav1.Object, error) {
			return env.Client.CoreV1().ReplicationControllers("default").Get(ctx, name, metav1.GetOptions{})
		},
	},
	"deployment": {
		path: "/apis/apps/v1/namespaces/default/deployments/",
		create: func(ctx context.Context, env *testenv.Env, name string, fs []string) error {
			t := podSpec()
			t.Spec.RestartPolicy = corev1.RestartPolicyAlways
			_, err := env.Client.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: fs},
				Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: t.Labels}, Template: t}}, metav1.CreateOptions{})
			return err
		},
		get: func(ctx context.Context, env *testenv.Env, name string) (metav1.Object, error) {
			return env.Client.AppsV1().Deployments("default").Get(ctx, name, metav1.GetOptions{})
		},
	},
	"event": {
		path: "/api/v1/namespaces/default/events/",
		create: func(ctx context.Context, env *testenv.Env, name string, fs []string) error {
			_, err := env.Client.CoreV1().Events("default").Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: fs},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "p"}, Reason: "R", Type: corev1.EventTypeNormal}, metav1.CreateOptions{})
			return err
		},
		get: func(ctx context.Context, env *testenv.Env, name string) (metav1.Object, error) {
			return env.Client.CoreV1().Events("default").Get(ctx, name, metav1.GetOptions{})
		},
	},
}

// No garbage collector runs here: the finalizers it would act on stay.
func TestDeleteOptionsSetGarbageCollectorFinalizers(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	const keep = "skiff.test/keep"
	for _, tc := range []struct {
		name, kind, body, query string
		finalizers              []string // on the object before the delete
		wantCode                int
		want                    []string // finalizers after; nil = deleted
	}{
		{name: "foreground", kind: "configmap", body: `{"propagationPolicy":"Foreground"}`, wantCode: 200, want: []string{metav1.FinalizerDeleteDependents}},
		{name: "orphan", kind: "configmap", body: `{"propagationPolicy":"Orphan"}`, wantCode: 200, want: []string{metav1.FinalizerOrphanDependents}},
		{name: "background", kind: "configmap", body: `{"propagationPolicy":"Background"}`, wantCode: 200},
		{name: "default", kind: "configmap", wantCode: 200},
		{name: "query-param", kind: "configmap", query: "?propagationPolicy=Orphan", wantCode: 200, want: []string{metav1.FinalizerOrphanDependents}},
		{name: "legacy-orphan", kind: "configmap", body: `{"orphanDependents":true}`, wantCode: 200, want: []string{metav1.FinalizerOrphanDependents}},
		{name: "legacy-cascade", kind: "configmap", body: `{"orphanDependents":false}`, wantCode: 200},
		{name: "legacy-cascade-pending", kind: "configmap", body: `{"orphanDependents":false}`, finalizers: []string{keep}, wantCode: 202, want: []string{keep}},
		{name: "kept-finalizer", kind: "configmap", body: `{"propagationPolicy":"Foreground"}`, finalizers: []string{keep}, wantCode: 200, want: []string{keep, metav1.FinalizerDeleteDependents}},
		{name: "job-default", kind: "job", wantCode: 200, want: []string{metav1.FinalizerOrphanDependents}},
		{name: "job-background", kind: "job", body: `{"propagationPolicy":"Background"}`, wantCode: 200},
		{name: "rc-default", kind: "rc", wantCode: 200, want: []string{metav1.FinalizerOrphanDependents}},
		{name: "deployment-default", kind: "deployment", wantCode: 200},
		{name: "deployment-foreground", kind: "deployment", body: `{"propagationPolicy":"Foreground"}`, wantCode: 200, want: []string{metav1.FinalizerDeleteDependents}},
		{name: "event-unsupported", kind: "event", body: `{"propagationPolicy":"Foreground"}`, wantCode: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := gcKinds[tc.kind]
			if err := k.create(ctx, env, tc.name, tc.finalizers); err != nil {
				t.Fatal(err)
			}
			code, body := raw(t, env, http.MethodDelete, k.path+tc.name+tc.query, "application/json", []byte(tc.body))
			if code != tc.wantCode {
				t.Fatalf("delete: got %d %s, want %d", code, body, tc.wantCode)
			}
			obj, err := k.get(ctx, env, tc.name)
			if tc.want == nil {
				if !apierrors.IsNotFound(err) {
					t.Fatalf("want deleted, got %v err %v", obj, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if obj.GetDeletionTimestamp() == nil || !slices.Equal(obj.GetFinalizers(), tc.want) {
				t.Fatalf("got deletionTimestamp %v finalizers %v, want set and %v", obj.GetDeletionTimestamp(), obj.GetFinalizers(), tc.want)
			}
			// The response is the object still there, as upstream.
			var m metav1.PartialObjectMetadata
			if err := json.Unmarshal([]byte(body), &m); err != nil || m.Name != tc.name || m.DeletionTimestamp == nil {
				t.Fatalf("response %s: want the object marked for deletion", body)
			}
		})
	}
}

func TestDeleteOptionsRejectsConflictingCascade(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	if err := gcKinds["configmap"].create(ctx, env, "c", nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, body, query, want string }{
		{name: "both in body", body: `{"orphanDependents":true,"propagationPolicy":"Foreground"}`, want: "cannot be both set"},
		{name: "both in query", query: "?orphanDependents=false&propagationPolicy=Background", want: "cannot be both set"},
		{name: "unknown policy", body: `{"propagationPolicy":"Sideways"}`, want: "Unsupported value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := raw(t, env, http.MethodDelete, "/api/v1/namespaces/default/configmaps/c"+tc.query, "application/json", []byte(tc.body))
			var st metav1.Status
			_ = json.Unmarshal([]byte(body), &st)
			if code != http.StatusUnprocessableEntity || st.Reason != metav1.StatusReasonInvalid || !strings.Contains(st.Message, tc.want) ||
				st.Details == nil || st.Details.Kind != "DeleteOptions" {
				t.Fatalf("got %d %s, want 422 Invalid DeleteOptions mentioning %q", code, body, tc.want)
			}
		})
	}
	if _, err := gcKinds["configmap"].get(ctx, env, "c"); err != nil {
		t.Fatalf("rejected deletes must leave the object: %v", err)
	}
}

// A second delete may change the cascade of an object waiting on its
// finalizers; dropping the last one deletes it, as does the collector
// removing its finalizer.
func TestDeleteAgainChangesCascade(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	cms := env.Client.CoreV1().ConfigMaps("default")
	del := func(name string, p metav1.DeletionPropagation) {
		t.Helper()
		if err := cms.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &p}); err != nil {
			t.Fatal(err)
		}
	}
	finalizers := func(name string) []string {
		t.Helper()
		c, err := cms.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return c.Finalizers
	}
	if _, err := cms.Create(ctx, cm("c", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	del("c", metav1.DeletePropagationOrphan)
	del("c", metav1.DeletePropagationForeground)
	if got := finalizers("c"); !slices.Equal(got, []string{metav1.FinalizerDeleteDependents}) {
		t.Fatalf("after orphan then foreground: finalizers %v", got)
	}
	del("c", metav1.DeletePropagationBackground)
	if got := finalizers("c"); got != nil {
		t.Fatalf("after background: still there with %v", got)
	}

	if _, err := cms.Create(ctx, cm("d", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	del("d", metav1.DeletePropagationForeground)
	if _, err := cms.Patch(ctx, "d", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := finalizers("d"); got != nil {
		t.Fatalf("finalizer removed: still there with %v", got)
	}
}

func TestDeleteCollectionSetsFinalizers(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	cms := env.Client.CoreV1().ConfigMaps("default")
	for _, n := range []string{"a", "b"} {
		c := cm(n, nil)
		c.Labels = map[string]string{"gc": "yes"}
		if _, err := cms.Create(ctx, c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cms.Create(ctx, cm("other", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	fg := metav1.DeletePropagationForeground
	if err := cms.DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &fg}, metav1.ListOptions{LabelSelector: "gc=yes"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		c, err := cms.Get(ctx, n, metav1.GetOptions{})
		if err != nil || c.DeletionTimestamp == nil || !slices.Equal(c.Finalizers, []string{metav1.FinalizerDeleteDependents}) {
			t.Fatalf("%s: got %v err %v, want marked with foregroundDeletion", n, c, err)
		}
	}
	both := true
	err := cms.DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &fg, OrphanDependents: &both}, metav1.ListOptions{}) //nolint:staticcheck
	if !apierrors.IsInvalid(err) {
		t.Fatalf("deletecollection with both options: got %v, want Invalid", err)
	}
	if c, err := cms.Get(ctx, "other", metav1.GetOptions{}); err != nil || c.DeletionTimestamp != nil {
		t.Fatalf("other: got %v err %v, want untouched", c, err)
	}
}
