package apiserver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/skiff-sh/skiff/internal/controllermanager"
	"github.com/skiff-sh/skiff/internal/server"
	"github.com/skiff-sh/skiff/internal/testenv"
)

func cm(name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}
}

// The informer uses client-go's defaults: protobuf and a WatchList start.
func TestInformerSeesAddsUpdatesDeletesInOrder(t *testing.T) {
	env := testenv.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cms := env.Client.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx, cm("before", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var seen []string
	record := func(s string) { mu.Lock(); seen = append(seen, s); mu.Unlock() }
	f := informers.NewSharedInformerFactoryWithOptions(env.Client, 0, informers.WithNamespace("default"))
	inf := f.Core().V1().ConfigMaps().Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { record("add " + o.(*corev1.ConfigMap).Name) },
		UpdateFunc: func(_, o any) { record("update " + o.(*corev1.ConfigMap).Name + " " + o.(*corev1.ConfigMap).Data["k"]) },
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			record("delete " + o.(*corev1.ConfigMap).Name)
		},
	})
	f.Start(ctx.Done())
	syncCtx, syncCancel := context.WithTimeout(ctx, 10*time.Second)
	defer syncCancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		t.Fatal("informer never synced (WatchList needs the initial-events-end bookmark)")
	}
	c, err := cms.Create(ctx, cm("a", map[string]string{"k": "1"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Data["k"] = "2"
	if _, err := cms.Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"add before", "add a", "update a 2", "delete a"}
	testenv.Eventually(t, 10*time.Second, "informer events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= len(want)
	})
	mu.Lock()
	defer mu.Unlock()
	// kube-root-ca.crt and the like may show up later; compare what we made.
	if fmt.Sprint(seen[:len(want)]) != fmt.Sprint(want) {
		t.Fatalf("events = %v, want %v", seen, want)
	}
}

func TestWatchResumesFromListResourceVersion(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	cms := env.Client.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx, cm("old", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, cm("new", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	select {
	case ev := <-w.ResultChan():
		if ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Name != "new" {
			t.Fatalf("first event = %s %v, want ADDED new", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
}

// One event goes to JSON and protobuf watchers at once; each encoding is
// shared between watchers of its kind, never across kinds, and a burst all
// arrives (flushes are batched while more events wait).
func TestJSONAndProtobufWatchersGetTheSameBurst(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	jsonCfg := rest.CopyConfig(env.Config)
	jsonCfg.ContentType = "application/json"
	jsonCfg.AcceptContentTypes = "application/json"
	clients := map[string]kubernetes.Interface{"protobuf": env.Client, "json": kubernetes.NewForConfigOrDie(jsonCfg)}
	const n = 50
	watches := map[string]watch.Interface{}
	for name, c := range clients {
		for i := range 2 {
			w, err := c.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			watches[fmt.Sprintf("%s-%d", name, i)] = w
		}
	}
	for i := range n {
		if _, err := env.Client.CoreV1().ConfigMaps("default").Create(ctx, cm(fmt.Sprintf("b-%02d", i), map[string]string{"i": fmt.Sprint(i)}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, w := range watches {
		for i := range n {
			select {
			case ev := <-w.ResultChan():
				got, ok := ev.Object.(*corev1.ConfigMap)
				if ev.Type != watch.Added || !ok || got.Name != fmt.Sprintf("b-%02d", i) || got.Data["i"] != fmt.Sprint(i) {
					t.Fatalf("%s: event %d = %s %#v", name, i, ev.Type, ev.Object)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: %d of %d events", name, i, n)
			}
		}
	}
}

func TestStaleUpdateConflicts(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	cms := env.Client.CoreV1().ConfigMaps("default")
	a, err := cms.Create(ctx, cm("c", map[string]string{"k": "1"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := a.DeepCopy()
	a.Data["k"] = "2"
	if _, err := cms.Update(ctx, a, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	b.Data["k"] = "3"
	_, err = cms.Update(ctx, b, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		t.Fatalf("stale update: got %v, want 409 Conflict", err)
	}
	if _, err := cms.Create(ctx, cm("c", nil), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("duplicate create: got %v, want AlreadyExists", err)
	}
}

// TestGetWithResourceVersionReadsTheCache: a GET naming a resourceVersion is
// answered (from the watch cache: see storage's TestGetAtReadsTheCache…) not
// older than that version, "0" = any, and a bad version is a 400.
func TestGetWithResourceVersionReadsTheCache(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	cms := env.Client.CoreV1().ConfigMaps("default")
	a, err := cms.Create(ctx, cm("c", map[string]string{"k": "1"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a.Data["k"] = "2"
	b, err := cms.Update(ctx, a, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Not older than the update: the cache waits for it.
	got, err := cms.Get(ctx, "c", metav1.GetOptions{ResourceVersion: b.ResourceVersion})
	if err != nil || got.Data["k"] != "2" || got.ResourceVersion != b.ResourceVersion {
		t.Fatalf("get at %s: %v %v, want the update", b.ResourceVersion, got.Data, err)
	}
	if got, err := cms.Get(ctx, "c", metav1.GetOptions{ResourceVersion: "0"}); err != nil || got.UID != a.UID {
		t.Fatalf("get at 0: %v, %v", got, err)
	}
	if _, err := cms.Get(ctx, "missing", metav1.GetOptions{ResourceVersion: "0"}); !apierrors.IsNotFound(err) {
		t.Fatalf("missing object at 0: %v, want 404", err)
	}
	if _, err := cms.Get(ctx, "c", metav1.GetOptions{ResourceVersion: "x"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("bad resourceVersion: %v, want 400", err)
	}
}

func TestWatchFromCompactedRevisionIsGone(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	cms := env.Client.CoreV1().ConfigMaps("default")
	first, err := cms.Create(ctx, cm("x", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var last *corev1.ConfigMap
	for i := 0; i < 3; i++ {
		if last, err = cms.Create(ctx, cm(fmt.Sprintf("y%d", i), nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var rev int64
	fmt.Sscan(last.ResourceVersion, &rev)
	if err := env.Server.API.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	_, err = cms.Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("watch from compacted revision: got %v, want 410 Expired", err)
	}
}

func TestListPagesAndSelectors(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	cms := env.Client.CoreV1().ConfigMaps("default")
	for i := 0; i < 5; i++ {
		c := cm(fmt.Sprintf("p%d", i), nil)
		c.Labels = map[string]string{"parity": []string{"even", "odd"}[i%2]}
		if _, err := cms.Create(ctx, c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	opts := metav1.ListOptions{Limit: 2}
	for pages := 0; ; pages++ {
		l, err := cms.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) > 2 {
			t.Fatalf("page of %d items, limit 2", len(l.Items))
		}
		for _, it := range l.Items {
			names = append(names, it.Name)
		}
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "p0,p1,p2,p3,p4") {
		t.Fatalf("paged names = %s", got)
	}
	l, err := cms.List(ctx, metav1.ListOptions{LabelSelector: "parity=odd"})
	if err != nil || len(l.Items) != 2 {
		t.Fatalf("label selector: %v items, err %v", len(l.Items), err)
	}
	l, err = cms.List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=p3"})
	if err != nil || len(l.Items) != 1 || l.Items[0].Name != "p3" {
		t.Fatalf("field selector: %v, err %v", l, err)
	}
	_, err = cms.List(ctx, metav1.ListOptions{FieldSelector: "spec.nope=1"})
	if !apierrors.IsBadRequest(err) {
		t.Fatalf("unknown field selector: got %v, want 400", err)
	}
}

func TestFinalizersHoldDeletion(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	cms := env.Client.CoreV1().ConfigMaps("default")
	c := cm("f", nil)
	c.Finalizers = []string{"example.com/hold"}
	if _, err := cms.Create(ctx, c, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "f", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := cms.Get(ctx, "f", metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp == nil {
		t.Fatalf("after delete with finalizer: %v, err %v; want it kept with deletionTimestamp", got, err)
	}
	got.Finalizers = nil
	if _, err := cms.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "f", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after removing the last finalizer: got %v, want NotFound", err)
	}
}

func TestScheduledPodDeletesGracefully(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	pods := env.Client.CoreV1().Pods("default")
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{
		NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sleep", "1"}}}}}
	if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx, "p", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := pods.Get(ctx, "p", metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp == nil || got.DeletionGracePeriodSeconds == nil || *got.DeletionGracePeriodSeconds != 30 {
		t.Fatalf("pod on a node after delete: %+v err %v; want kept with a 30s grace period", got.ObjectMeta, err)
	}
	zero := int64(0)
	if err := pods.Delete(ctx, "p", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "p", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after grace 0 delete: %v, want NotFound", err)
	}
	// Unscheduled pods go at once.
	p.Spec.NodeName = ""
	p.ResourceVersion = ""
	if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(ctx, "p", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "p", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("unscheduled pod after delete: %v, want NotFound", err)
	}
}

func TestNamespaceMustExist(t *testing.T) {
	env := testenv.Start(t)
	_, err := env.Client.CoreV1().ConfigMaps("nope").Create(context.Background(), cm("x", nil), metav1.CreateOptions{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("create in missing namespace: got %v, want NotFound", err)
	}
}

// raw sends a request with the admin credentials and returns status and body.
func raw(t *testing.T, env *testenv.Env, method, path, contentType string, body []byte) (int, string) {
	t.Helper()
	return do(t, env, method, path, map[string]string{"Content-Type": contentType}, body)
}

// do sends a request with the admin credentials and returns status and body.
func do(t *testing.T, env *testenv.Env, method, path string, headers map[string]string, body []byte) (int, string) {
	t.Helper()
	tc, err := rest.TLSConfigFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	req, _ := http.NewRequest(method, env.Config.Host+path, bytes.NewReader(body))
	for k, v := range headers {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBadInputGetsClearErrors(t *testing.T) {
	env := testenv.Start(t)
	cases := []struct {
		name, method, path, ct, body string
		code                         int
		msg                          string
	}{
		{"unknown field strict", "POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", "application/json",
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"bogus":1}`, 400, `unknown field \"bogus\"`},
		{"duplicate field strict", "POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", "application/json",
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b"}}`, 400, `duplicate field`},
		{"malformed json", "POST", "/api/v1/namespaces/default/configmaps", "application/json", `{"apiVersion":`, 400, "cannot be handled"},
		{"wrong kind", "POST", "/api/v1/namespaces/default/configmaps", "application/json",
			`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"}}`, 400, "does not match"},
		{"name mismatch", "PUT", "/api/v1/namespaces/default/configmaps/x", "application/json",
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"y"}}`, 400, "does not match the name on the URL"},
		{"bad content type", "POST", "/api/v1/namespaces/default/configmaps", "text/plain", `x`, 415, "unknown format"},
		{"invalid name", "POST", "/api/v1/namespaces/default/configmaps", "application/json",
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_Valid"}}`, 422, "metadata.name"},
		{"unknown resource", "GET", "/api/v1/widgets", "", ``, 404, "could not find"},
		{"too large", "POST", "/api/v1/namespaces/default/configmaps", "application/json",
			`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"k":"` + strings.Repeat("x", 4<<20) + `"}}`, 413, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := raw(t, env, c.method, c.path, c.ct, []byte(c.body))
			if code != c.code || !strings.Contains(body, c.msg) || !strings.Contains(body, `"kind":"Status"`) {
				t.Fatalf("got %d %s; want %d with %q in a Status", code, body, c.code, c.msg)
			}
		})
	}
}

func TestAnonymousRequestsAreUnauthorized(t *testing.T) {
	env := testenv.Start(t)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Get(env.Config.Host + "/api/v1/namespaces")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous list: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", env.Config.Host+"/api/v1/namespaces", nil)
	req.Header.Set("Authorization", "Bearer "+env.Server.Token)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("node token list: %d, want 200", resp.StatusCode)
	}
}

func TestTerminatingNamespaceRefusesNewObjects(t *testing.T) {
	env := testenv.Start(t, func(o *server.Options) { o.Controllers = controllermanager.Start })
	ctx := context.Background()
	nss := env.Client.CoreV1().Namespaces()
	if _, err := nss.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "doomed"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	held := cm("held", nil)
	held.Finalizers = []string{"example.com/hold"}
	cms := env.Client.CoreV1().ConfigMaps("doomed")
	if _, err := cms.Create(ctx, held, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := nss.Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ns, err := nss.Get(ctx, "doomed", metav1.GetOptions{})
	if err != nil || ns.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("namespace after delete: %v %v, want Terminating", ns.Status.Phase, err)
	}
	if _, err := cms.Create(ctx, cm("new", nil), metav1.CreateOptions{}); !apierrors.IsForbidden(err) ||
		!apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		t.Fatalf("create in terminating namespace: %v, want Forbidden with cause %s", err, corev1.NamespaceTerminatingCause)
	}
	// The namespace controller deletes the content; the finalizer holds it until released.
	testenv.Eventually(t, 10*time.Second, "held configmap marked for deletion", func() bool {
		c, err := cms.Get(ctx, "held", metav1.GetOptions{})
		return err == nil && c.DeletionTimestamp != nil
	})
	c, _ := cms.Get(ctx, "held", metav1.GetOptions{})
	c.Finalizers = nil
	if _, err := cms.Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "namespace gone", func() bool {
		_, err := nss.Get(ctx, "doomed", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

func TestDryRunWritesNothing(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	cms := env.Client.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx, cm("dry", nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry-run create stored the object: %v", err)
	}
	if _, err := cms.Create(ctx, cm("real", map[string]string{"k": "1"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "real", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "real", metav1.GetOptions{}); err != nil {
		t.Fatalf("dry-run delete deleted: %v", err)
	}
}

func TestBindingScaleEvictionAndTables(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	pods := env.Client.CoreV1().Pods("default")
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}
	if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "b"}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}
	if err := pods.Bind(ctx, bind, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := pods.Get(ctx, "b", metav1.GetOptions{})
	if got.Spec.NodeName != "n1" {
		t.Fatalf("after binding nodeName = %q", got.Spec.NodeName)
	}
	if err := pods.Bind(ctx, bind, metav1.CreateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("second binding: %v, want Conflict", err)
	}

	// A table with upstream's pod columns, wide ones at priority 1.
	code, body := rawAccept(t, env, "/api/v1/namespaces/default/pods", "application/json;as=Table;v=v1;g=meta.k8s.io")
	if code != 200 || !strings.Contains(body, `"kind":"Table"`) || !strings.Contains(body, `"name":"Restarts"`) ||
		!strings.Contains(body, `"name":"Node","type":"string","format":"","description"`) || !strings.Contains(body, `"PartialObjectMetadata"`) {
		t.Fatalf("pod table: %d %s", code, body)
	}
	code, _ = rawAccept(t, env, "/api/v1/namespaces/default/pods", "application/vnd.kubernetes.protobuf")
	if code != 200 {
		t.Fatalf("protobuf list: %d", code)
	}

	zero := int64(0)
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "b"}, DeleteOptions: &metav1.DeleteOptions{GracePeriodSeconds: &zero}}
	if err := pods.EvictV1(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Get(ctx, "b", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("evicted pod: %v, want NotFound", err)
	}

	deps := env.Client.AppsV1().Deployments("default")
	labels := map[string]string{"app": "s"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}}}
	if _, err := deps.Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sc, err := deps.GetScale(ctx, "s", metav1.GetOptions{})
	if err != nil || sc.Spec.Replicas != 1 || sc.Status.Selector != "app=s" {
		t.Fatalf("scale: %+v %v", sc, err)
	}
	sc.Spec.Replicas = 4
	if _, err := deps.UpdateScale(ctx, "s", sc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if d, _ := deps.Get(ctx, "s", metav1.GetOptions{}); *d.Spec.Replicas != 4 || d.Generation != 2 {
		t.Fatalf("after scale: replicas %d generation %d, want 4 and 2", *d.Spec.Replicas, d.Generation)
	}
	// A status write changes only status.
	d, _ = deps.Get(ctx, "s", metav1.GetOptions{})
	d.Status.Replicas = 7
	d.Spec.Paused = true
	if _, err := deps.UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	d, _ = deps.Get(ctx, "s", metav1.GetOptions{})
	if d.Status.Replicas != 7 || d.Spec.Paused {
		t.Fatalf("status update: status.replicas %d paused %v, want 7 and false", d.Status.Replicas, d.Spec.Paused)
	}
}

func rawAccept(t *testing.T, env *testenv.Env, path, accept string) (int, string) {
	t.Helper()
	return do(t, env, "GET", path, map[string]string{"Accept": accept}, nil)
}

func TestMetricsAreScrapable(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	if _, err := env.Client.CoreV1().ConfigMaps("default").Create(ctx, cm("m", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, body := rawAccept(t, env, "/metrics", "text/plain")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	found := false
	for _, m := range families["apiserver_request_total"].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		if l["verb"] == "CREATE" && l["resource"] == "configmaps" && l["code"] == "201" && m.GetCounter().GetValue() >= 1 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no apiserver_request_total for the configmap create")
	}
	for _, name := range []string{"apiserver_request_duration_seconds", "etcd_request_duration_seconds", "apiserver_storage_objects", "apiserver_current_inflight_requests", "go_goroutines"} {
		if _, ok := families[name]; !ok {
			t.Errorf("metric %s missing", name)
		}
	}
}

// TestServiceGetsIPFamilies: a Service with cluster IPs, and a headless one,
// are IPv4 single-stack, as upstream's allocator records; an update leaving
// the fields out keeps them.
func TestServiceGetsIPFamilies(t *testing.T) {
	env := testenv.Start(t)
	ctx := context.Background()
	svcs := env.Client.CoreV1().Services("default")
	for _, clusterIP := range []string{"", corev1.ClusterIPNone} {
		name := "svc" + strings.ToLower(clusterIP)
		svc, err := svcs.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{ClusterIP: clusterIP, Selector: map[string]string{"a": "b"}, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(svc.Spec.IPFamilies) != 1 || svc.Spec.IPFamilies[0] != corev1.IPv4Protocol ||
			svc.Spec.IPFamilyPolicy == nil || *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
			t.Fatalf("%s: ipFamilies %v policy %v, want [IPv4] SingleStack", name, svc.Spec.IPFamilies, svc.Spec.IPFamilyPolicy)
		}
		svc.Spec.IPFamilies, svc.Spec.IPFamilyPolicy = nil, nil
		if svc, err = svcs.Update(ctx, svc, metav1.UpdateOptions{}); err != nil || len(svc.Spec.IPFamilies) != 1 || svc.Spec.IPFamilyPolicy == nil {
			t.Fatalf("%s: update without the families: %v %+v", name, err, svc.Spec)
		}
	}
}
