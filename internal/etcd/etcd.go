// Package etcd gives skiff its storage backend: an embedded single-member etcd
// under the data dir, or a client to an external etcd cluster.
package etcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"
)

// Backend is a connected etcd client plus, when embedded, the server to stop.
type Backend struct {
	Client    *clientv3.Client
	Endpoints []string
	server    *embed.Etcd
}

// Options choose the backend. With Servers empty an embedded etcd is started in Dir.
type Options struct {
	Servers []string
	Dir     string
	// ClientPort and PeerPort for the embedded member; 0 picks a free port.
	ClientPort, PeerPort int
}

// Start connects to external etcd or starts the embedded one.
func Start(ctx context.Context, opts Options) (*Backend, error) {
	if len(opts.Servers) == 0 {
		srv, endpoint, err := startEmbedded(opts) // returns once the member serves
		if err != nil {
			return nil, err
		}
		// Calls straight into the member: no gRPC encoding, sockets or
		// interceptors between the API server and its own etcd.
		return &Backend{Endpoints: []string{endpoint}, server: srv, Client: v3client.New(srv.Server)}, nil
	}
	b := &Backend{Endpoints: opts.Servers}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:          b.Endpoints,
		DialTimeout:        5 * time.Second,
		Logger:             zap.NewNop(),
		MaxCallSendMsgSize: 8 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", b.Endpoints, err)
	}
	b.Client = cli
	// Fail fast with a clear line when external etcd is unreachable.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Get(sctx, "/registry/health", clientv3.WithCountOnly()); err != nil {
		b.Close()
		return nil, fmt.Errorf("reach etcd %v: %w", b.Endpoints, err)
	}
	return b, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startEmbedded starts the embedded member. Ports it picked itself can be
// taken by another process between picking and listening (tests start many
// servers at once): then it picks again.
func startEmbedded(opts Options) (*embed.Etcd, string, error) {
	for attempt := 1; ; attempt++ {
		srv, url, err := startEmbeddedOnce(opts)
		if err == nil || attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) ||
			(opts.ClientPort != 0 && opts.PeerPort != 0) {
			return srv, url, err
		}
	}
}

func startEmbeddedOnce(opts Options) (*embed.Etcd, string, error) {
	var err error
	cport, pport := opts.ClientPort, opts.PeerPort
	if cport == 0 {
		if cport, err = freePort(); err != nil {
			return nil, "", err
		}
	}
	if pport == 0 {
		if pport, err = freePort(); err != nil {
			return nil, "", err
		}
	}
	cfg := embed.NewConfig()
	cfg.Name = "skiff"
	cfg.Dir = opts.Dir
	cfg.Logger = "zap"
	cfg.LogLevel = "fatal" // its shutdown reports closed listeners as errors
	curl, _ := url.Parse("http://127.0.0.1:" + strconv.Itoa(cport))
	purl, _ := url.Parse("http://127.0.0.1:" + strconv.Itoa(pport))
	cfg.ListenClientUrls = []url.URL{*curl}
	cfg.AdvertiseClientUrls = []url.URL{*curl}
	cfg.ListenPeerUrls = []url.URL{*purl}
	cfg.AdvertisePeerUrls = []url.URL{*purl}
	cfg.InitialCluster = cfg.Name + "=" + purl.String()
	// Metrics on the client port are enough; no extra listener.
	cfg.ListenMetricsUrls = nil
	// Snapshot more often than the default so restarts replay little WAL.
	cfg.SnapshotCount = 10000
	cfg.MaxRequestBytes = 4 << 20
	cfg.QuotaBackendBytes = 8 << 30
	srv, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("start embedded etcd in %s: %w", opts.Dir, err)
	}
	select {
	case <-srv.Server.ReadyNotify():
	case err := <-srv.Err():
		srv.Close()
		return nil, "", fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(30 * time.Second):
		srv.Close()
		return nil, "", fmt.Errorf("embedded etcd in %s not ready after 30s", opts.Dir)
	}
	return srv, curl.String(), nil
}

// Embedded reports whether this backend runs its own etcd member.
func (b *Backend) Embedded() bool { return b.server != nil }

// Close closes the client and stops the embedded server, flushing its WAL.
func (b *Backend) Close() {
	if b.Client != nil {
		b.Client.Close()
	}
	if b.server != nil {
		b.server.Close()
	}
}

// SplitServers parses the --etcd-servers flag value.
func SplitServers(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
