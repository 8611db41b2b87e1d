// Package pftest holds the port-forward checks the agent's and the process
// runtime's tests share: an echo server "in the pod", and round trips
// through a forwarder to it.
package pftest

import (
	"fmt"
	"io"
	"net"
	"testing"

	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/tools/portforward"
)

// EchoServer listens on a loopback port (pods share the node's network on
// the process runtime) and echoes every connection; it returns the port.
func EchoServer(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// CheckForward forwards a local port through dialer to port in the pod and
// sends two connections to the echo server there; label names them in failures.
func CheckForward(t testing.TB, dialer httpstream.Dialer, port int, label string) {
	t.Helper()
	stop, ready := make(chan struct{}), make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pf.ForwardPorts() }()
	defer func() { close(stop); <-done }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("port-forward: %v", err)
	}
	ports, err := pf.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local))
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf("hello %d over %s", i, label)
		fmt.Fprint(c, msg)
		_ = c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if string(got) != msg {
			t.Errorf("connection %d over %s: %q, %v; want %q", i, label, got, err, msg)
		}
	}
}
