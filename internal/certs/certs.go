// Package certs manages the cluster PKI for `skiff server`: a self-signed CA,
// the API server's serving certificate, the admin client certificate, the
// admin kubeconfig and the node join token.
//
// Everything is created on first start under a data directory and loaded
// unchanged on later starts, so clients and node agents keep trusting the
// server across restarts.
package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// renewBefore: a leaf this close to expiry is re-issued on Ensure, so a
	// server restarted now and then never serves an expired certificate.
	renewBefore = 30 * 24 * time.Hour
	// clockSkew backdates NotBefore so peers with slightly slow clocks accept
	// freshly issued certificates.
	clockSkew = time.Hour

	// AdminUser and AdminGroup identify the kubeconfig written for operators;
	// system:masters is bound to cluster-admin by the default RBAC policy.
	AdminUser  = "system:admin"
	AdminGroup = "system:masters"

	// ServiceIP is the first address of the default service CIDR
	// (10.43.0.0/16), where the "kubernetes" Service points in-cluster clients.
	ServiceIP = "10.43.0.1"
)

// File names inside Options.Dir.
const (
	caCertFile      = "ca.crt"
	caKeyFile       = "ca.key"
	servingCertFile = "serving.crt"
	servingKeyFile  = "serving.key"
	adminCertFile   = "admin.crt"
	adminKeyFile    = "admin.key"
)

// Options configures Ensure.
type Options struct {
	// Dir holds the PKI files, e.g. <data-dir>/tls.
	Dir string
	// SANs are extra names/IPs (from --tls-san) for the serving certificate;
	// each is used as an IP SAN if it parses as one, else as a DNS SAN.
	SANs []string
}

// PKI is the loaded cluster PKI.
type PKI struct {
	CACert *x509.Certificate
	CAPEM  []byte

	// ServingCert is the API server's certificate (Leaf populated).
	ServingCert tls.Certificate

	// AdminCertPEM/AdminKeyPEM are a client certificate for
	// CN=system:admin, O=system:masters.
	AdminCertPEM []byte
	AdminKeyPEM  []byte

	caKey crypto.Signer
}

// Ensure loads the PKI from opts.Dir or creates it (dir mode 0700, keys 0600).
// The CA is never replaced once it exists, since every issued credential
// depends on it. A leaf certificate is re-issued from that CA when it is
// missing, unreadable, not signed by the CA, within 30 days of expiry or, for
// the serving certificate, lacking a SAN that is now required (a new
// --tls-san or a new host IP).
func Ensure(opts Options) (*PKI, error) {
	if opts.Dir == "" {
		return nil, errors.New("certs: no PKI directory given")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create PKI directory %s: %w", opts.Dir, err)
	}
	// Tighten a pre-existing directory too: it holds the CA key.
	if err := os.Chmod(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict PKI directory %s: %w", opts.Dir, err)
	}

	p, err := ensureCA(opts.Dir)
	if err != nil {
		return nil, err
	}

	dns, ips := servingSANs(opts.SANs)
	servingPath, servingKeyPath := filepath.Join(opts.Dir, servingCertFile), filepath.Join(opts.Dir, servingKeyFile)
	certPEM, keyPEM, err := p.ensureLeaf(servingPath, servingKeyPath, func(c *x509.Certificate) bool {
		return hasSANs(c, dns, ips)
	}, func() (*x509.Certificate, error) {
		return &x509.Certificate{
			Subject:     pkix.Name{CommonName: "skiff-apiserver"},
			DNSNames:    dns,
			IPAddresses: ips,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("ensure serving certificate: %w", err)
	}
	if p.ServingCert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, fmt.Errorf("load serving certificate: %w", err)
	}

	p.AdminCertPEM, p.AdminKeyPEM, err = p.ensureLeaf(
		filepath.Join(opts.Dir, adminCertFile), filepath.Join(opts.Dir, adminKeyFile),
		func(c *x509.Certificate) bool {
			return c.Subject.CommonName == AdminUser && slicesEqual(c.Subject.Organization, []string{AdminGroup})
		},
		func() (*x509.Certificate, error) { return clientTemplate(AdminUser, []string{AdminGroup}), nil },
	)
	if err != nil {
		return nil, fmt.Errorf("ensure admin client certificate: %w", err)
	}
	return p, nil
}

// ensureCA loads the CA from dir or creates it when neither file exists.
// A half-present CA is an error rather than a reason to regenerate, because
// silently replacing the CA would invalidate every credential handed out.
func ensureCA(dir string) (*PKI, error) {
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		cert, key, err := parsePair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("load CA from %s: %w", dir, err)
		}
		if !cert.IsCA {
			return nil, fmt.Errorf("load CA from %s: %s is not a CA certificate", dir, certPath)
		}
		return &PKI{CACert: cert, CAPEM: certPEM, caKey: key}, nil
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		// First start: create below.
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return nil, fmt.Errorf("read CA certificate: %w", certErr)
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("read CA key: %w", keyErr)
	default:
		return nil, fmt.Errorf("load CA from %s: only one of %s and %s exists; refusing to replace the CA", dir, caCertFile, caKeyFile)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The timestamp keeps CA names distinct across reinstalls, so clients
		// holding an old CA get a clear mismatch rather than a confusing one.
		Subject:               pkix.Name{CommonName: fmt.Sprintf("skiff-ca@%d", now.Unix())},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-sign CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new CA certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, err
	}
	certPEM = encodeCert(der)
	// Key first: a crash between the two writes leaves only the key, which
	// the next start reports instead of pairing it with a different cert.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("write CA key: %w", err)
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write CA certificate: %w", err)
	}
	return &PKI{CACert: cert, CAPEM: certPEM, caKey: key}, nil
}

// ensureLeaf returns the leaf at certPath/keyPath if it is still usable
// (matching key, signed by this CA, not near expiry, and accepted by ok);
// otherwise it issues one from tmpl and stores it.
func (p *PKI) ensureLeaf(certPath, keyPath string, ok func(*x509.Certificate) bool, tmpl func() (*x509.Certificate, error)) (certPEM, keyPEM []byte, err error) {
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	if certErr == nil && keyErr == nil {
		// Any parse problem just means "re-issue": leaves are cheap and the
		// CA that vouches for them is unchanged.
		if cert, _, err := parsePair(certPEM, keyPEM); err == nil && p.usable(cert) && ok(cert) {
			return certPEM, keyPEM, nil
		}
	} else if certErr != nil && !errors.Is(certErr, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("read %s: %w", certPath, certErr)
	} else if keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("read %s: %w", keyPath, keyErr)
	}

	t, err := tmpl()
	if err != nil {
		return nil, nil, err
	}
	certPEM, keyPEM, err = p.issue(t, leafValidity)
	if err != nil {
		return nil, nil, err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, nil, fmt.Errorf("write %s: %w", keyPath, err)
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, nil, fmt.Errorf("write %s: %w", certPath, err)
	}
	return certPEM, keyPEM, nil
}

// usable reports whether cert was signed by this CA and is not about to expire.
func (p *PKI) usable(cert *x509.Certificate) bool {
	if err := cert.CheckSignatureFrom(p.CACert); err != nil {
		return false
	}
	return time.Now().Add(renewBefore).Before(cert.NotAfter)
}

// IssueClient signs a client certificate for commonName (the Kubernetes user)
// and groups (its Organization entries) with the CA. validFor <= 0 means the
// default leaf validity of one year; validity never extends past the CA's.
func (p *PKI) IssueClient(commonName string, groups []string, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	if commonName == "" {
		return nil, nil, errors.New("issue client certificate: empty common name")
	}
	if validFor <= 0 {
		validFor = leafValidity
	}
	certPEM, keyPEM, err = p.issue(clientTemplate(commonName, groups), validFor)
	if err != nil {
		return nil, nil, fmt.Errorf("issue client certificate for %q: %w", commonName, err)
	}
	return certPEM, keyPEM, nil
}

func clientTemplate(commonName string, groups []string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName, Organization: append([]string(nil), groups...)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// issue fills in the fields common to all leaves, generates a fresh key and
// signs tmpl with the CA.
func (p *PKI) issue(tmpl *x509.Certificate, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	if tmpl.SerialNumber, err = randomSerial(); err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl.NotBefore = now.Add(-clockSkew)
	tmpl.NotAfter = now.Add(validFor)
	if tmpl.NotAfter.After(p.CACert.NotAfter) {
		tmpl.NotAfter = p.CACert.NotAfter
	}
	// ECDSA keys sign; they never encipher keys, so DigitalSignature suffices.
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CACert, key.Public(), p.caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

// ClientCAPool returns a pool holding the cluster CA, for tls.Config.ClientCAs
// (or RootCAs on the client side).
func (p *PKI) ClientCAPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.CACert)
	return pool
}

// servingSANs lists the names the API server can be reached by: loopback,
// the in-cluster Service names and IP, the host name, every address of every
// up interface and the operator's extras, deduplicated in a stable order.
func servingSANs(extra []string) ([]string, []net.IP) {
	dns := []string{
		"localhost",
		"kubernetes",
		"kubernetes.default",
		"kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local",
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback, net.ParseIP(ServiceIP)}
	if h, err := os.Hostname(); err == nil && h != "" {
		dns = append(dns, strings.ToLower(h))
	}
	ips = append(ips, interfaceIPs()...)
	for _, s := range extra {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, strings.ToLower(s))
		}
	}
	return dedupDNS(dns), dedupIPs(ips)
}

// interfaceIPs returns the addresses of all up interfaces. Link-local
// addresses are skipped: IPv6 ones need a zone to be dialled and both kinds
// churn, which would force needless re-issues. Errors yield no addresses,
// since the loopback and --tls-san names still make a usable certificate.
func interfaceIPs() []net.IP {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			var ip net.IP
			switch v := a.(type) {
			case *net.IPNet:
				ip = v.IP
			case *net.IPAddr:
				ip = v.IP
			}
			if ip == nil || ip.IsLinkLocalUnicast() {
				continue
			}
			ips = append(ips, ip)
		}
	}
	return ips
}

// hasSANs reports whether cert covers every wanted name and IP. Extra SANs in
// the cert (e.g. a host IP that went away) are fine and do not force a re-issue.
func hasSANs(cert *x509.Certificate, dns []string, ips []net.IP) bool {
	have := make(map[string]bool, len(cert.DNSNames))
	for _, d := range cert.DNSNames {
		have[strings.ToLower(d)] = true
	}
	for _, d := range dns {
		if !have[strings.ToLower(d)] {
			return false
		}
	}
	for _, want := range ips {
		found := false
		for _, got := range cert.IPAddresses {
			if got.Equal(want) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func dedupDNS(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func dedupIPs(in []net.IP) []net.IP {
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, ip := range in {
		// Normalise so an IPv4 address in 16-byte form matches its 4-byte form.
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		if k := ip.String(); !seen[k] {
			seen[k] = true
			out = append(out, ip)
		}
	}
	return out
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// parsePair decodes a PEM certificate and key and checks that they belong
// together.
func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, errors.New("no PEM certificate found")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse certificate: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, errors.New("private key does not match certificate")
	}
	return cert, key, nil
}

// parseKey accepts PKCS#8 (what we write) as well as SEC1 EC and PKCS#1 RSA
// keys, so a CA supplied by an operator in a common format also loads.
func parseKey(keyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM private key found")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported private key PEM type %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", key)
	}
	return signer, nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func randomSerial() (*big.Int, error) {
	// 128 random bits: unique without keeping a serial counter on disk.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return serial, nil
}

// EnsureToken returns the node join token stored at path, creating a random
// one (mode 0600, parent directories 0700) on first use. The token is kept
// across restarts so already-joined and yet-to-join nodes keep working.
func EnsureToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if tok := string(bytes.TrimSpace(data)); tok != "" {
			return tok, nil
		}
		// An empty file (e.g. from an interrupted write) gets a fresh token.
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read join token %s: %w", path, err)
	}

	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate join token: %w", err)
	}
	tok := hex.EncodeToString(buf)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create directory for join token: %w", err)
	}
	if err := writeFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write join token %s: %w", path, err)
	}
	return tok, nil
}

// writeFileAtomic writes data via a temp file and rename, so a crash never
// leaves a truncated key or certificate behind, and so perm applies even when
// the file already existed with a looser mode.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
