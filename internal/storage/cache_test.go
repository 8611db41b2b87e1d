package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/internal/etcd"
	"github.com/skiff-sh/skiff/internal/storage"
)

// opLog records the etcd operations a store reports.
type opLog struct {
	mu  sync.Mutex
	ops map[string]int
}

func (l *opLog) observe(op string, _ time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops[op]++
}

func (l *opLog) count(op string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ops[op]
}

func startEtcd(t *testing.T, ctx context.Context) *clientv3.Client {
	t.Helper()
	b, err := etcd.Start(ctx, etcd.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Client
}

func configMapStore(t *testing.T, ctx context.Context, client *clientv3.Client, log *opLog) *storage.Store {
	t.Helper()
	s, err := storage.New(ctx, storage.Config{
		Client: client, Watcher: clientv3.NewWatcher(client),
		Resource: schema.GroupResource{Resource: "configmaps"}, KeyRoot: "configmaps",
		NewFunc:   func() runtime.Object { return &corev1.ConfigMap{} },
		Compacted: func() int64 { return 0 },
		Observe:   log.observe,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func names(items []runtime.Object) []string {
	var out []string
	for _, o := range items {
		out = append(out, o.(*corev1.ConfigMap).Name)
	}
	return out
}

// A list without resourceVersion is served by the watch cache, yet sees
// every write etcd acknowledged before it, including writes that did not go
// through this store and writes to other resources (the list's revision).
func TestConsistentListFromCacheSeesEveryEarlierWrite(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := startEtcd(t, ctx)
	log := &opLog{ops: map[string]int{}}
	s := configMapStore(t, ctx, client, log)

	for i := range 50 {
		name := fmt.Sprintf("cm-%02d", i)
		if _, err := s.Create(ctx, s.Key("default", name), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}); err != nil {
			t.Fatal(err)
		}
		// Straight into etcd: the cache learns of it only through its watch.
		data, _ := json.Marshal(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "direct-" + name, Namespace: "default"}})
		if _, err := client.Put(ctx, s.Key("default", "direct-"+name), string(data)); err != nil {
			t.Fatal(err)
		}
		res, err := s.List(ctx, storage.ListOptions{Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Items) != 2*(i+1) {
			t.Fatalf("list after %d creates and %d direct puts has %d items: %v", i+1, i+1, len(res.Items), names(res.Items))
		}
	}
	// A write elsewhere moves etcd's revision; the idle cache confirms it
	// has seen that revision (progress notification) and reports it.
	put, err := client.Put(ctx, "/registry/secrets/default/other", "{}")
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.List(ctx, storage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision < put.Header.Revision {
		t.Fatalf("list revision %d is older than a write acknowledged before it (%d)", res.Revision, put.Header.Revision)
	}
	if n := log.count("list"); n != 0 {
		t.Fatalf("%d lists read etcd, want all from the cache", n)
	}
}

// Paginated consistent lists come from the cache too: every page is at the
// first page's revision whatever is written in between, and a continue
// token whose snapshot the serving cache lacks is answered by etcd at the
// same revision, with the same result.
func TestPaginatedListFromCacheIsOneSnapshot(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := startEtcd(t, ctx)
	log := &opLog{ops: map[string]int{}}
	s := configMapStore(t, ctx, client, log)
	for i := range 25 {
		name := fmt.Sprintf("cm-%02d", i)
		if _, err := s.Create(ctx, s.Key("default", name), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := s.List(ctx, storage.ListOptions{Namespace: "default", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Items) != 10 || first.Continue == "" || first.Remaining == nil || *first.Remaining != 15 {
		t.Fatalf("first page: %d items, continue %q, remaining %v", len(first.Items), first.Continue, first.Remaining)
	}
	// Changes after the first page must not show in the later pages.
	if _, err := s.Delete(ctx, s.Key("default", "cm-20"), "cm-20", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, s.Key("default", "cm-99"), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-99", Namespace: "default"}}); err != nil {
		t.Fatal(err)
	}

	collect := func(st *storage.Store) []string {
		got := names(first.Items)
		tok := first.Continue
		for tok != "" {
			page, err := st.List(ctx, storage.ListOptions{Namespace: "default", Limit: 10, Continue: tok})
			if err != nil {
				t.Fatal(err)
			}
			if page.Revision != first.Revision {
				t.Fatalf("page at revision %d, first page at %d", page.Revision, first.Revision)
			}
			got = append(got, names(page.Items)...)
			tok = page.Continue
		}
		return got
	}
	want := []string{}
	for i := range 25 {
		want = append(want, fmt.Sprintf("cm-%02d", i))
	}
	if got := collect(s); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pages from the cache:\n got %v\nwant %v", got, want)
	}
	if n := log.count("list"); n != 0 {
		t.Fatalf("%d pages read etcd, want all from the cache's snapshot", n)
	}

	// A second store (another API server, or a restarted one) has no snapshot: etcd answers.
	log2 := &opLog{ops: map[string]int{}}
	s2 := configMapStore(t, ctx, client, log2)
	if got := collect(s2); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pages from etcd:\n got %v\nwant %v", got, want)
	}
	if log2.count("list") == 0 {
		t.Fatalf("a token without a snapshot was not served by etcd")
	}

	// A new consistent list sees the changes.
	all, err := s.List(ctx, storage.ListOptions{Namespace: "default", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Items) != 25 || all.Continue != "" || names(all.Items)[24] != "cm-99" {
		t.Fatalf("fresh list: %v (continue %q)", names(all.Items), all.Continue)
	}
	if _, err := s.List(ctx, storage.ListOptions{Namespace: "default", Limit: 10, Continue: "bogus"}); err == nil {
		t.Fatal("a bogus continue token was accepted")
	}
}

// GuaranteedUpdate starts from the cache's copy; when that copy is stale
// (etcd was written behind the cache's back a moment ago) the update, a no-op
// and an error must all still be decided on etcd's current object.
func TestGuaranteedUpdateFromStaleCacheUsesEtcdState(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := startEtcd(t, ctx)
	s := configMapStore(t, ctx, client, &opLog{ops: map[string]int{}})
	key := s.Key("default", "n")
	withN := func(n int) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "default"}, Data: map[string]string{"n": fmt.Sprint(n)}}
	}
	if _, err := s.Create(ctx, key, withN(0)); err != nil {
		t.Fatal(err)
	}
	putBehind := func(n int) int64 {
		data, _ := json.Marshal(withN(n))
		resp, err := client.Put(ctx, key, string(data))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	for i := 1; i <= 20; i++ {
		// An update computed from a stale copy is retried from etcd's object.
		putBehind(i * 10)
		out, err := s.GuaranteedUpdate(ctx, key, "n", func(cur runtime.Object) (runtime.Object, error) {
			cm := cur.(*corev1.ConfigMap)
			var n int
			fmt.Sscan(cm.Data["n"], &n)
			cm.Data["n"] = fmt.Sprint(n + 1)
			return cm, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := out.(*corev1.ConfigMap).Data["n"]; got != fmt.Sprint(i*10+1) {
			t.Fatalf("update after etcd had %d: n=%s, want %d", i*10, got, i*10+1)
		}

		// A no-op is confirmed against etcd: it reports etcd's object and revision.
		rev := putBehind(i*10 + 5)
		out, err = s.GuaranteedUpdate(ctx, key, "n", func(cur runtime.Object) (runtime.Object, error) { return cur, nil })
		if err != nil {
			t.Fatal(err)
		}
		if got, rv := out.(*corev1.ConfigMap).Data["n"], out.(*corev1.ConfigMap).ResourceVersion; got != fmt.Sprint(i*10+5) || rv != fmt.Sprint(rev) {
			t.Fatalf("no-op after etcd had %d at %d: n=%s at %s", i*10+5, rev, got, rv)
		}

		// An error from a stale copy is not final.
		putBehind(i*10 + 7)
		_, err = s.GuaranteedUpdate(ctx, key, "n", func(cur runtime.Object) (runtime.Object, error) {
			if cm := cur.(*corev1.ConfigMap); cm.Data["n"] != fmt.Sprint(i*10+7) {
				return nil, fmt.Errorf("stale: n=%s", cm.Data["n"])
			}
			return cur, nil
		})
		if err != nil {
			t.Fatalf("error from a stale copy was returned: %v", err)
		}
	}
	// Deleted behind the cache's back: NotFound, not a resurrection.
	if _, err := client.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	_, err := s.GuaranteedUpdate(ctx, key, "n", func(cur runtime.Object) (runtime.Object, error) {
		cm := cur.DeepCopyObject().(*corev1.ConfigMap)
		cm.Data["n"] = "again"
		return cm, nil
	})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("update of an object deleted in etcd: %v, want NotFound", err)
	}
}

// Delete starts from the cache's copy too: its uid check and precheck are
// decided on etcd's object when the copy is stale.
func TestDeleteFromStaleCacheUsesEtcdState(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := startEtcd(t, ctx)
	s := configMapStore(t, ctx, client, &opLog{ops: map[string]int{}})
	withUID := func(name string, uid types.UID) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uid}}
	}
	replaced := func(name string) string {
		key := s.Key("default", name)
		if _, err := s.Create(ctx, key, withUID(name, "old")); err != nil {
			t.Fatal(err)
		}
		eventually(t, func() bool { _, ok := s.CachedGet(key); return ok })
		// Replaced behind the cache's back by an object with another uid.
		data, _ := json.Marshal(withUID(name, "new"))
		if _, err := client.Put(ctx, key, string(data)); err != nil {
			t.Fatal(err)
		}
		return key
	}
	for i := range 20 {
		name := fmt.Sprintf("new-%02d", i)
		key := replaced(name)
		out, err := s.Delete(ctx, key, name, "new", func(o runtime.Object) error {
			if uid := o.(*corev1.ConfigMap).UID; uid != "new" {
				return fmt.Errorf("precheck saw uid %s", uid)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("delete of the current object: %v", err)
		}
		if out.(*corev1.ConfigMap).UID != "new" {
			t.Fatalf("deleted %s, want the object with uid new", out.(*corev1.ConfigMap).UID)
		}
		if resp, err := client.Get(ctx, key); err != nil || len(resp.Kvs) != 0 {
			t.Fatalf("still in etcd after delete: %v %v", resp, err)
		}

		name = fmt.Sprintf("old-%02d", i)
		key = replaced(name)
		if _, err := s.Delete(ctx, key, name, "old", nil); !apierrors.IsNotFound(err) {
			t.Fatalf("delete of uid old after it was replaced: %v, want NotFound", err)
		}
		if resp, err := client.Get(ctx, key); err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("the replacement is gone: %v %v", resp, err)
		}
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
