package etcd

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// TestTakenPortIsRecognised: a port taken between picking and listening
// fails with EADDRINUSE, which startEmbedded retries with new ports.
func TestTakenPortIsRecognised(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	_, _, err = startEmbeddedOnce(Options{Dir: t.TempDir(), ClientPort: taken})
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("start on a taken port: %v, want EADDRINUSE", err)
	}
	srv, _, err := startEmbedded(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
}
