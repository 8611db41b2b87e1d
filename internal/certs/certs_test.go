package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func mustEnsure(t *testing.T, opts Options) *PKI {
	t.Helper()
	p, err := Ensure(opts)
	if err != nil {
		t.Fatalf("Ensure(%+v): %v", opts, err)
	}
	return p
}

func parseCertPEM(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestEnsureIsStable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	opts := Options{Dir: dir, SANs: []string{"skiff.example.com", "192.0.2.10"}}
	first := mustEnsure(t, opts)
	second := mustEnsure(t, opts)

	if !first.CACert.Equal(second.CACert) || !bytes.Equal(first.CAPEM, second.CAPEM) {
		t.Error("CA changed between starts")
	}
	if !bytes.Equal(first.ServingCert.Certificate[0], second.ServingCert.Certificate[0]) {
		t.Error("serving certificate changed between starts")
	}
	if !bytes.Equal(first.AdminCertPEM, second.AdminCertPEM) || !bytes.Equal(first.AdminKeyPEM, second.AdminKeyPEM) {
		t.Error("admin certificate changed between starts")
	}

	if got := fileMode(t, dir); got != 0o700 {
		t.Errorf("dir mode = %o, want 700", got)
	}
	for _, f := range []string{caKeyFile, servingKeyFile, adminKeyFile} {
		if got := fileMode(t, filepath.Join(dir, f)); got != 0o600 {
			t.Errorf("%s mode = %o, want 600", f, got)
		}
	}

	ca := first.CACert
	if !ca.IsCA || ca.NotAfter.Sub(time.Now()) < 9*365*24*time.Hour {
		t.Errorf("CA: IsCA=%v NotAfter=%v, want a CA valid ~10 years", ca.IsCA, ca.NotAfter)
	}
	if leaf := first.ServingCert.Leaf; leaf == nil || leaf.NotAfter.Sub(time.Now()) < 364*24*time.Hour {
		t.Errorf("serving cert leaf missing or valid < 1 year: %v", leaf)
	}
}

func TestEnsureReissues(t *testing.T) {
	tests := []struct {
		name          string
		sans          []string // SANs for the second Ensure; the first uses none
		mutate        func(t *testing.T, dir string, p *PKI)
		wantServing   bool // serving cert re-issued
		wantAdmin     bool // admin cert re-issued
		wantNewSANDNS string
		wantNewSANIP  string
	}{
		{name: "unchanged"},
		{name: "new DNS SAN", sans: []string{"api.example.com"}, wantServing: true, wantNewSANDNS: "api.example.com"},
		{name: "new IP SAN", sans: []string{" 203.0.113.7 "}, wantServing: true, wantNewSANIP: "203.0.113.7"},
		{name: "already covered SAN", sans: []string{"localhost", "127.0.0.1"}},
		{
			name: "serving cert near expiry",
			mutate: func(t *testing.T, dir string, p *PKI) {
				dns, ips := servingSANs(nil)
				certPEM, keyPEM, err := p.issue(&x509.Certificate{
					Subject: pkix.Name{CommonName: "old"}, DNSNames: dns, IPAddresses: ips,
					ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
				}, 10*24*time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				writeTestPair(t, dir, servingCertFile, servingKeyFile, certPEM, keyPEM)
			},
			wantServing: true,
		},
		{
			name: "admin cert signed by another CA",
			mutate: func(t *testing.T, dir string, _ *PKI) {
				other := mustEnsure(t, Options{Dir: t.TempDir()})
				writeTestPair(t, dir, adminCertFile, adminKeyFile, other.AdminCertPEM, other.AdminKeyPEM)
			},
			wantAdmin: true,
		},
		{
			name: "serving key does not match cert",
			mutate: func(t *testing.T, dir string, p *PKI) {
				writeTestPair(t, dir, servingCertFile, servingKeyFile, nil, p.AdminKeyPEM)
			},
			wantServing: true,
		},
		{
			name: "admin cert missing",
			mutate: func(t *testing.T, dir string, _ *PKI) {
				if err := os.Remove(filepath.Join(dir, adminCertFile)); err != nil {
					t.Fatal(err)
				}
			},
			wantAdmin: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			before := mustEnsure(t, Options{Dir: dir})
			if tt.mutate != nil {
				tt.mutate(t, dir, before)
			}
			after := mustEnsure(t, Options{Dir: dir, SANs: tt.sans})

			if !before.CACert.Equal(after.CACert) {
				t.Fatal("CA changed")
			}
			servingChanged := !bytes.Equal(before.ServingCert.Certificate[0], after.ServingCert.Certificate[0])
			if servingChanged != tt.wantServing {
				t.Errorf("serving re-issued = %v, want %v", servingChanged, tt.wantServing)
			}
			adminChanged := !bytes.Equal(before.AdminCertPEM, after.AdminCertPEM)
			if adminChanged != tt.wantAdmin {
				t.Errorf("admin re-issued = %v, want %v", adminChanged, tt.wantAdmin)
			}
			leaf := after.ServingCert.Leaf
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: after.ClientCAPool()}); err != nil {
				t.Errorf("serving cert does not chain to CA: %v", err)
			}
			if tt.wantNewSANDNS != "" {
				if err := leaf.VerifyHostname(tt.wantNewSANDNS); err != nil {
					t.Error(err)
				}
			}
			if tt.wantNewSANIP != "" {
				if err := leaf.VerifyHostname(tt.wantNewSANIP); err != nil {
					t.Error(err)
				}
			}
			// A third start with the same options must be a no-op.
			again := mustEnsure(t, Options{Dir: dir, SANs: tt.sans})
			if !bytes.Equal(after.ServingCert.Certificate[0], again.ServingCert.Certificate[0]) ||
				!bytes.Equal(after.AdminCertPEM, again.AdminCertPEM) {
				t.Error("certificates changed on a repeated start")
			}
		})
	}
}

// writeTestPair overwrites a leaf's files; a nil certPEM keeps the cert.
func writeTestPair(t *testing.T, dir, certFile, keyFile string, certPEM, keyPEM []byte) {
	t.Helper()
	if certPEM != nil {
		if err := os.WriteFile(filepath.Join(dir, certFile), certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, keyFile), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureRefusesHalfCA(t *testing.T) {
	dir := t.TempDir()
	mustEnsure(t, Options{Dir: dir})
	if err := os.Remove(filepath.Join(dir, caCertFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "refusing to replace the CA") {
		t.Fatalf("Ensure with CA key but no CA cert: err = %v, want refusal", err)
	}
}

func TestServingCertVerifies(t *testing.T) {
	p := mustEnsure(t, Options{Dir: t.TempDir(), SANs: []string{"Skiff.Example.com", "198.51.100.4"}})
	names := []string{
		"localhost", "127.0.0.1", "::1",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
		ServiceIP, "skiff.example.com", "198.51.100.4",
	}
	if h, err := os.Hostname(); err == nil {
		names = append(names, h)
	}
	for _, ip := range interfaceIPs() {
		names = append(names, ip.String())
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			_, err := p.ServingCert.Leaf.Verify(x509.VerifyOptions{
				DNSName:   name,
				Roots:     p.ClientCAPool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				t.Errorf("verify serving cert for %q: %v", name, err)
			}
		})
	}
	if err := p.ServingCert.Leaf.VerifyHostname("not-in-cert.example.org"); err == nil {
		t.Error("serving cert unexpectedly valid for an unlisted name")
	}
}

func TestClientCerts(t *testing.T) {
	p := mustEnsure(t, Options{Dir: t.TempDir()})
	nodePEM, nodeKey, err := p.IssueClient("system:node:worker-1", []string{"system:nodes"}, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		certPEM    []byte
		keyPEM     []byte
		wantCN     string
		wantOrg    []string
		maxLifeDay int
	}{
		{"admin", p.AdminCertPEM, p.AdminKeyPEM, AdminUser, []string{AdminGroup}, 366},
		{"node", nodePEM, nodeKey, "system:node:worker-1", []string{"system:nodes"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tls.X509KeyPair(tt.certPEM, tt.keyPEM); err != nil {
				t.Fatalf("key pair: %v", err)
			}
			c := parseCertPEM(t, tt.certPEM)
			if c.Subject.CommonName != tt.wantCN || !slicesEqual(c.Subject.Organization, tt.wantOrg) {
				t.Errorf("subject = %v, want CN=%s O=%v", c.Subject, tt.wantCN, tt.wantOrg)
			}
			if _, err := c.Verify(x509.VerifyOptions{
				Roots:     p.ClientCAPool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			}); err != nil {
				t.Errorf("verify as client auth: %v", err)
			}
			if _, err := c.Verify(x509.VerifyOptions{
				Roots:     p.ClientCAPool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			}); err == nil {
				t.Error("client cert unexpectedly usable for server auth")
			}
			if life := time.Until(c.NotAfter); life > time.Duration(tt.maxLifeDay)*24*time.Hour {
				t.Errorf("lifetime %v exceeds %d days", life, tt.maxLifeDay)
			}
		})
	}
}

func TestKubeconfigHandshake(t *testing.T) {
	p := mustEnsure(t, Options{Dir: t.TempDir()})

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := r.TLS.PeerCertificates[0]
		io.WriteString(w, c.Subject.CommonName+"/"+strings.Join(c.Subject.Organization, ","))
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{p.ServingCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.ClientCAPool(),
	}
	srv.StartTLS()
	defer srv.Close()

	path := filepath.Join(t.TempDir(), "nested", "dir", "kubeconfig.yaml")
	if err := p.WriteKubeconfig(path, srv.URL); err != nil {
		t.Fatal(err)
	}
	if got := fileMode(t, path); got != 0o600 {
		t.Errorf("kubeconfig mode = %o, want 600", got)
	}
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if raw.CurrentContext != "skiff" || raw.Contexts["skiff"] == nil ||
		raw.Contexts["skiff"].Cluster != "skiff" || raw.Contexts["skiff"].AuthInfo != "admin" {
		t.Errorf("unexpected kubeconfig contexts: current=%q %+v", raw.CurrentContext, raw.Contexts)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != srv.URL {
		t.Errorf("host = %q, want %q", cfg.Host, srv.URL)
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(cfg.Host + "/")
	if err != nil {
		t.Fatalf("mTLS request: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if want := AdminUser + "/" + AdminGroup; resp.StatusCode != http.StatusOK || string(body) != want {
		t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, want)
	}

	// Without a client certificate the server must refuse the handshake.
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ClientCAPool()}}}
	if resp, err := anon.Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Error("request without client cert succeeded")
	}
}

func TestEnsureToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server", "token")
	first, err := EnsureToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(first) {
		t.Errorf("token %q is not 32 hex chars", first)
	}
	if got := fileMode(t, path); got != 0o600 {
		t.Errorf("token mode = %o, want 600", got)
	}
	for i := 0; i < 2; i++ {
		again, err := EnsureToken(path)
		if err != nil {
			t.Fatal(err)
		}
		if again != first {
			t.Fatalf("token changed: %q -> %q", first, again)
		}
	}
	other, err := EnsureToken(filepath.Join(t.TempDir(), "token"))
	if err != nil {
		t.Fatal(err)
	}
	if other == first {
		t.Error("two fresh tokens are equal")
	}
}

func TestServingSANsParsing(t *testing.T) {
	dns, ips := servingSANs([]string{"10.0.0.5", "fd00::1", "Node.Local", "", "localhost", "10.43.0.1"})
	want := map[string]bool{"10.0.0.5": false, "fd00::1": false, ServiceIP: false}
	for _, ip := range ips {
		if _, ok := want[ip.String()]; ok {
			want[ip.String()] = true
		}
	}
	for k, found := range want {
		if !found {
			t.Errorf("IP SAN %s missing from %v", k, ips)
		}
	}
	seen := map[string]int{}
	for _, d := range dns {
		seen[d]++
		if net.ParseIP(d) != nil {
			t.Errorf("IP %s listed as DNS SAN", d)
		}
	}
	if seen["node.local"] != 1 || seen["localhost"] != 1 {
		t.Errorf("DNS SANs %v: want node.local and localhost exactly once", dns)
	}
	ipSeen := map[string]int{}
	for _, ip := range ips {
		ipSeen[ip.String()]++
	}
	if ipSeen[ServiceIP] != 1 {
		t.Errorf("service IP listed %d times", ipSeen[ServiceIP])
	}
}
