package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// streamServer is the runtime's CRI streaming server. As containerd's, it
// listens on loopback only and serves each Exec, Attach and PortForward
// request once, under a random single-use token that the CRI call returns
// in a URL; the agent proxies the client's upgraded connection there. It
// speaks SPDY and WebSocket (up to v4.channel.k8s.io) through upstream's
// k8s.io/cri-streaming.
type streamServer struct {
	mu   sync.Mutex
	srv  streaming.Server
	http *http.Server
}

// streaming starts the streaming server on first use, so a runtime that is
// never asked to stream opens no port.
func (r *Runtime) streaming() (streaming.Server, error) {
	s := &r.streams
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return s.srv, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "start streaming server: %v", err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = l.Addr().String()
	cfg.BaseURL = &url.URL{Scheme: "http", Host: cfg.Addr}
	srv, err := streaming.NewServer(cfg, streamRuntime{r})
	if err != nil {
		l.Close()
		return nil, status.Errorf(codes.Internal, "start streaming server: %v", err)
	}
	s.srv = srv
	s.http = &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			ctx, cancel := context.WithCancel(ctx)
			c.(*hangupConn).hangup = cancel
			return ctx
		}}
	go func() { _ = s.http.Serve(hangupListener{l}) }()
	return srv, nil
}

// A hijacked request's context is not cancelled when its connection closes,
// so a command whose client went away would run on unseen. hangupConn
// cancels its request's context when the connection ends, which kills the
// command (execStream), as a terminal's hangup would.
type hangupListener struct{ net.Listener }

func (l hangupListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &hangupConn{Conn: c}, nil
}

type hangupConn struct {
	net.Conn
	hangup context.CancelFunc // set by ConnContext before the first Read
}

func (c *hangupConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	// A timeout is not the end: net/http aborts its own pending read with
	// one when the handler takes the connection over.
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		c.hangup()
	}
	return n, err
}

func (c *hangupConn) Close() error {
	c.hangup()
	return c.Conn.Close()
}

// stopStreaming closes the streaming server and every stream it serves.
func (r *Runtime) stopStreaming() {
	s := &r.streams
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.http != nil {
		_ = s.http.Close()
		s.srv, s.http = nil, nil
	}
}

// runningContainer is the container id, if its process runs.
func (r *Runtime) runningContainer(id string) (*container, error) {
	c, err := r.getContainer(id)
	if err != nil {
		return nil, err
	}
	o, err := c.observe()
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	if o.state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running", id)
	}
	return c, nil
}

// Exec prepares a streaming exec in a running container and returns its URL.
func (r *Runtime) Exec(_ context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if len(req.GetCmd()) == 0 {
		return nil, status.Errorf(codes.InvalidArgument, "exec in container %s: no command", req.GetContainerId())
	}
	if _, err := r.runningContainer(req.GetContainerId()); err != nil {
		return nil, err
	}
	s, err := r.streaming()
	if err != nil {
		return nil, err
	}
	return s.GetExec(req)
}

// Attach prepares a streaming attach to a running container and returns its
// URL.
func (r *Runtime) Attach(_ context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if _, err := r.runningContainer(req.GetContainerId()); err != nil {
		return nil, err
	}
	s, err := r.streaming()
	if err != nil {
		return nil, err
	}
	return s.GetAttach(req)
}

// PortForward prepares forwarding to a ready sandbox's ports and returns
// the URL.
func (r *Runtime) PortForward(_ context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	sb, err := r.getSandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if !sb.ready() {
		return nil, status.Errorf(codes.FailedPrecondition, "pod sandbox %s is not ready", req.GetPodSandboxId())
	}
	s, err := r.streaming()
	if err != nil {
		return nil, err
	}
	return s.GetPortForward(req)
}

// streamRuntime is what the streaming server calls once a client connected.
type streamRuntime struct{ r *Runtime }

func (s streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return s.r.execStream(ctx, id, cmd, in, out, errOut, tty, resize)
}

func (s streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return s.r.attachStream(ctx, id, in, out, errOut)
}

// PortForward connects stream to the port on the node's loopback: pods
// share the node's network on this runtime, so that is the pod's port.
func (s streamRuntime) PortForward(ctx context.Context, sandboxID string, port int32, stream io.ReadWriteCloser) error {
	if _, err := s.r.getSandbox(sandboxID); err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("failed to connect to localhost:%d in pod sandbox %s: %w", port, sandboxID, err)
	}
	defer conn.Close()
	fromPod := make(chan struct{})
	go func() {
		// The client's end of input ends the pod's input, not the
		// connection: the pod may still answer.
		_, _ = io.Copy(conn, stream)
		_ = conn.(*net.TCPConn).CloseWrite()
	}()
	go func() {
		_, _ = io.Copy(stream, conn)
		close(fromPod)
	}()
	select {
	case <-fromPod:
	case <-ctx.Done():
	}
	return nil
}
