package server_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-sh/skiff/internal/controllermanager"
	"github.com/skiff-sh/skiff/internal/server"
	"github.com/skiff-sh/skiff/internal/testenv"
)

func TestRestartKeepsObjectsCertificatesAndToken(t *testing.T) {
	dir := t.TempDir()
	env := testenv.Start(t, func(o *server.Options) { o.DataDir = dir })
	ctx := context.Background()
	if _, err := env.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ca1, _ := os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
	token1 := env.Server.Token
	stopEnv(t, env)

	env2 := testenv.Start(t, func(o *server.Options) { o.DataDir = dir })
	if _, err := env2.Client.CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{}); err != nil {
		t.Fatalf("object lost across restart: %v", err)
	}
	ca2, _ := os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
	if string(ca1) != string(ca2) || env2.Server.Token != token1 {
		t.Fatal("CA or node token changed across restart")
	}
}

// stopEnv stops a test server early, as its cleanup would.
func stopEnv(t *testing.T, env *testenv.Env) {
	t.Helper()
	env.Stop()
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// externalEtcd runs Debian's etcd for the test and returns its client URL.
func externalEtcd(t *testing.T) string {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd not installed (Debian package etcd-server)")
	}
	client, peer := freePort(t), freePort(t)
	curl, purl := fmt.Sprintf("http://127.0.0.1:%d", client), fmt.Sprintf("http://127.0.0.1:%d", peer)
	cmd := exec.Command(bin, "--data-dir", t.TempDir(), "--name", "e1",
		"--listen-client-urls", curl, "--advertise-client-urls", curl,
		"--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl, "--initial-cluster", "e1="+purl)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return curl
}

// TestTwoServersShareExternalEtcd runs Debian's etcd and two skiff servers on it.
func TestTwoServersShareExternalEtcd(t *testing.T) {
	curl := externalEtcd(t)
	ext := func(o *server.Options) { o.EtcdServers = []string{curl} }
	a := testenv.Start(t, ext)
	b := testenv.Start(t, ext)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := b.Client.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := a.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "via-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev := <-w.ResultChan():
			if cm, ok := ev.Object.(*corev1.ConfigMap); ok && ev.Type == watch.Added && cm.Name == "via-a" {
				if _, err := b.Client.CoreV1().ConfigMaps("default").Get(ctx, "via-a", metav1.GetOptions{}); err != nil {
					t.Fatalf("server b cannot read what a wrote: %v", err)
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("a write through server a never reached a watch on server b")
		}
	}
}

// TestOneLeaderPerRoleAndStandbyTakesOver runs two servers with controllers
// on one etcd: each lease has one holder, and when it stops the other server
// takes both roles.
func TestOneLeaderPerRoleAndStandbyTakesOver(t *testing.T) {
	curl := externalEtcd(t)
	opts := func(o *server.Options) {
		o.EtcdServers = []string{curl}
		o.Controllers = controllermanager.Start
	}
	a := testenv.Start(t, opts)
	b := testenv.Start(t, opts)
	ctx := context.Background()
	holder := func(name string) string {
		l, err := b.Client.CoordinationV1().Leases("kube-system").Get(ctx, name, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	id := func(env *testenv.Env) string {
		u, _ := url.Parse(env.Server.URL)
		host, _ := os.Hostname()
		return host + "_" + u.Port()
	}
	roles := []string{"kube-scheduler", "kube-controller-manager"}
	for _, r := range roles {
		testenv.Eventually(t, 20*time.Second, r+" lease held by one of the servers", func() bool {
			h := holder(r)
			return h == id(a) || h == id(b)
		})
	}
	for _, env := range []*testenv.Env{a, b} {
		body, err := env.Client.Discovery().RESTClient().Get().AbsPath("/readyz").Param("verbose", "").DoRaw(ctx)
		if err != nil || !strings.Contains(string(body), "[+]leaderElection ok") || !strings.Contains(string(body), "[+]etcd ok") ||
			!strings.Contains(string(body), "[+]informer-sync ok") {
			t.Fatalf("/readyz?verbose: %v\n%s", err, body)
		}
	}
	// Stop whichever leads the controller manager; the other must take over both roles.
	leader, standby := a, b
	if holder("kube-controller-manager") == id(b) {
		leader, standby = b, a
	}
	leader.Stop()
	start := time.Now()
	for _, r := range roles {
		testenv.Eventually(t, 15*time.Second, r+" taken over by the standby", func() bool {
			l, err := standby.Client.CoordinationV1().Leases("kube-system").Get(ctx, r, metav1.GetOptions{})
			return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == id(standby)
		})
	}
	t.Logf("standby took over in %s", time.Since(start).Round(time.Millisecond))
}
