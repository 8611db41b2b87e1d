package apiserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	gwebsocket "github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	pfconstants "k8s.io/apimachinery/pkg/util/portforward"
	"k8s.io/apimachinery/pkg/util/proxy"
	constants "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	clientspdy "k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/skiff-sh/skiff/internal/quietlog"
)

// pods/exec, pods/attach and pods/portforward, as upstream's API server
// serves them: the pod's node's agent (the kubelet port, authenticated by
// the API server's client certificate) does the work, and this side
// carries the client's upgraded connection there.
//
//   - SPDY, and WebSocket up to v4.channel.k8s.io, go through unchanged
//     (UpgradeAwareHandler); the runtime's streaming server speaks them.
//   - WebSocket v5.channel.k8s.io (kubectl ≥ 1.30 exec/attach) is
//     translated to SPDY, as upstream's StreamTranslatorProxy does: the
//     WebSocket ends here and a client-go SPDY executor talks to the agent.
//   - port-forward's WebSocket tunnel (SPDY/3.1+portforward.k8s.io, kubectl
//     ≥ 1.31) carries SPDY frames: they are unwrapped from the WebSocket
//     messages and passed to an SPDY connection to the agent, as upstream's
//     StreamTunnelingProxy does.

// streamIdleTimeout closes a stream connection nothing crossed for this
// long, as the kubelet's default --streaming-connection-idle-timeout.
const streamIdleTimeout = 4 * time.Hour

// streamSubresource says whether pods/<sub> is a streaming subresource.
func streamSubresource(sub string) bool {
	return sub == "exec" || sub == "attach" || sub == "portforward"
}

// execOptions are a PodExecOptions' or PodAttachOptions' stream flags.
type execOptions struct{ stdin, stdout, stderr, tty bool }

// serveStream serves GET or POST of pods/exec, pods/attach, pods/portforward.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, req *request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return methodNotAllowed(r.Method)
	}
	r = r.WithContext(quietlog.Context(r.Context()))
	if r.Method == http.MethodGet {
		// A WebSocket upgrade is a GET, but it runs commands as the SPDY
		// POST does: as upstream, it also needs "create".
		if err := s.authorize(r, req.h.GR(), Attributes{Verb: "create", Namespace: req.namespace,
			Resource: req.h.Plural, Subresource: req.sub, Name: req.name}); err != nil {
			return err
		}
	}
	obj, err := req.h.store.Get(r.Context(), req.h.key(req), req.name)
	if err != nil {
		return err
	}
	pod := obj.(*corev1.Pod)
	q := r.URL.Query()
	agentQuery := url.Values{}
	var path string
	var opts execOptions
	if req.sub == "portforward" {
		for _, p := range q["ports"] {
			if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
				return badRequest(fmt.Sprintf("invalid port %q: must be between 1 and 65535", p))
			}
			agentQuery.Add("port", p)
		}
		path = "/portforward/" + pod.Namespace + "/" + pod.Name
	} else {
		container, err := streamContainer(pod, q.Get("container"))
		if err != nil {
			return err
		}
		opts = execOptions{stdin: flag(q, "stdin"), stdout: flag(q, "stdout"), stderr: flag(q, "stderr"), tty: flag(q, "tty")}
		if opts.tty && opts.stderr {
			opts.stderr = false // a terminal has one output stream
		}
		if !opts.stdin && !opts.stdout && !opts.stderr {
			return badRequest("you must specify at least 1 of stdin, stdout, stderr")
		}
		if req.sub == "exec" {
			if len(q["command"]) == 0 {
				return badRequest("you must specify at least one command for the container")
			}
			agentQuery["command"] = q["command"]
		}
		for k, on := range map[string]bool{"input": opts.stdin, "output": opts.stdout, "error": opts.stderr, "tty": opts.tty} {
			if on {
				agentQuery.Set(k, "1")
			}
		}
		path = "/" + req.sub + "/" + pod.Namespace + "/" + pod.Name + "/" + container
	}
	if pod.Spec.NodeName == "" {
		return badRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	if p := pod.Status.Phase; p == corev1.PodSucceeded || p == corev1.PodFailed {
		return badRequest(fmt.Sprintf("cannot %s a container in a completed pod; current phase is %s",
			map[string]string{"exec": "exec into", "attach": "attach to", "portforward": "port-forward to"}[req.sub], p))
	}
	loc, err := s.kubeletURL(r.Context(), pod.Spec.NodeName)
	if err != nil {
		return err
	}
	loc.Path, loc.RawQuery = path, agentQuery.Encode()

	w = hijackable(w)
	switch {
	case req.sub != "portforward" && wsstream.IsWebSocketRequestWithStreamCloseProtocol(r):
		s.translateToSPDY(w, r, loc, opts)
	case req.sub == "portforward" && wsstream.IsWebSocketRequestWithTunnelingProtocol(r):
		return s.tunnelPortForward(w, r, loc)
	default:
		h := proxy.NewUpgradeAwareHandler(loc, s.kubelet, false, true,
			&upgradeErrorResponder{})
		h.ServeHTTP(w, agentRequest(r))
	}
	return nil
}

// flag reads a boolean query parameter as the parameter codec does.
func flag(q url.Values, name string) bool {
	v := strings.ToLower(q.Get(name))
	return v == "true" || v == "1"
}

// streamContainer validates the container asked for, or picks the pod's only
// one, as upstream does.
func streamContainer(pod *corev1.Pod, name string) (string, error) {
	if name == "" {
		if len(pod.Spec.Containers) != 1 {
			var names []string
			for _, c := range pod.Spec.Containers {
				names = append(names, c.Name)
			}
			return "", badRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: [%s]",
				pod.Name, strings.Join(names, " ")))
		}
		return pod.Spec.Containers[0].Name, nil
	}
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range cs {
			if c.Name == name {
				return name, nil
			}
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return name, nil
		}
	}
	return "", badRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
}

// kubeletTLSConfig is the API server's side of the kubelet port: its client
// certificate, and no check of the agent's self-signed serving certificate
// (as upstream without --kubelet-certificate-authority).
func (s *Server) kubeletTLSConfig() *tls.Config {
	tc := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
	if s.cfg.KubeletClientCert != nil {
		tc.Certificates = []tls.Certificate{*s.cfg.KubeletClientCert}
	}
	return tc
}

// agentRequest is the client's request without its credentials: the agent
// trusts the API server's certificate, and the user's token is not its to
// see.
func agentRequest(r *http.Request) *http.Request {
	out := r.Clone(r.Context())
	for k := range out.Header {
		if k == "Authorization" || k == "Cookie" || strings.HasPrefix(k, "Impersonate-") {
			out.Header.Del(k)
		}
	}
	return out
}

// hijackable unwraps response writers (the metrics recorder) down to one
// that can hand over the connection.
func hijackable(w http.ResponseWriter) http.ResponseWriter {
	for {
		if _, ok := w.(http.Hijacker); ok {
			return w
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

// upgradeErrorResponder answers a client whose upgrade could not reach the
// agent.
type upgradeErrorResponder struct{}

func (upgradeErrorResponder) Error(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, apierrors.NewServiceUnavailable(fmt.Sprintf("error dialing backend: %v", err)))
}

// translateToSPDY serves a v5.channel.k8s.io WebSocket client through an
// SPDY connection to the agent.
func (s *Server) translateToSPDY(w http.ResponseWriter, r *http.Request, loc *url.URL, o execOptions) {
	const stdinCh, stdoutCh, stderrCh, errorCh, resizeCh = 0, 1, 2, 3, 4
	channel := func(on bool, t wsstream.ChannelType) wsstream.ChannelType {
		if on {
			return t
		}
		return wsstream.IgnoreChannel
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		constants.StreamProtocolV5Name: {Binary: true, Channels: []wsstream.ChannelType{
			channel(o.stdin, wsstream.ReadChannel), channel(o.stdout, wsstream.WriteChannel),
			// The client never writes the error channel: reading it ends
			// only when the connection does (see below).
			channel(o.stderr, wsstream.WriteChannel), wsstream.ReadWriteChannel, channel(o.tty, wsstream.ReadChannel)}},
	})
	conn.SetIdleTimeout(streamIdleTimeout)
	_, streams, err := conn.Open(w, r)
	if err != nil {
		return // Open answered the client
	}
	defer conn.Close()
	// An empty message on the first output channel tells the client the
	// streams are open.
	switch {
	case o.stdout:
		_, _ = streams[stdoutCh].Write(nil)
	case o.stderr:
		_, _ = streams[stderrCh].Write(nil)
	default:
		_, _ = streams[errorCh].Write(nil)
	}
	writeStatus := func(st metav1.Status) {
		st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
		b, _ := json.Marshal(st)
		_, _ = streams[errorCh].Write(b)
	}

	rt, err := spdy.NewRoundTripperWithConfig(spdy.RoundTripperConfig{TLS: s.kubeletTLSConfig(),
		Proxier: noProxy, PingPeriod: 5 * time.Second})
	var executor remotecommand.Executor
	if err == nil {
		executor, err = remotecommand.NewSPDYExecutorRejectRedirects(rt, clientspdy.NewUpgraderForStreaming(rt), http.MethodPost, loc)
	}
	if err != nil {
		writeStatus(apierrors.NewInternalError(err).ErrStatus)
		return
	}
	so := remotecommand.StreamOptions{Tty: o.tty}
	if o.stdin {
		so.Stdin = streams[stdinCh]
	}
	if o.stdout {
		so.Stdout = streams[stdoutCh]
	}
	if o.stderr {
		so.Stderr = streams[stderrCh]
	}
	if o.tty {
		so.TerminalSizeQueue = &sizeQueue{d: json.NewDecoder(streams[resizeCh])}
	}
	// A hijacked request's context outlives its connection: end the SPDY
	// side when the client is gone.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() { _, _ = io.Copy(io.Discard, streams[errorCh]); cancel() }()
	err = executor.StreamWithContext(ctx, so)
	var exitErr exec.CodeExitError
	var statusErr *apierrors.StatusError
	switch {
	case err == nil:
		writeStatus(metav1.Status{Status: metav1.StatusSuccess})
	case errors.As(err, &exitErr) && exitErr.Exited():
		writeStatus(metav1.Status{
			Status:  metav1.StatusFailure,
			Reason:  constants.NonZeroExitCodeReason,
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", exitErr),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{
				{Type: constants.ExitCodeCauseType, Message: strconv.Itoa(exitErr.ExitStatus())}}},
		})
	case errors.As(err, &statusErr):
		writeStatus(statusErr.ErrStatus)
	default:
		// The agent's own words: they already say what failed.
		writeStatus(metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError,
			Reason: metav1.StatusReasonInternalError, Message: err.Error()})
	}
}

func noProxy(*http.Request) (*url.URL, error) { return nil, nil }

// sizeQueue hands the client's terminal sizes (JSON on the resize channel)
// to the SPDY executor.
type sizeQueue struct{ d *json.Decoder }

func (q *sizeQueue) Next() *remotecommand.TerminalSize {
	var size remotecommand.TerminalSize
	if err := q.d.Decode(&size); err != nil {
		return nil
	}
	return &size
}

// tunnelPortForward serves port-forward's WebSocket tunnel: the client runs
// SPDY inside WebSocket messages, so once both sides are upgraded the SPDY
// bytes are copied between the tunnel and an SPDY upgrade to the agent.
func (s *Server) tunnelPortForward(w http.ResponseWriter, r *http.Request, loc *url.URL) error {
	// The agent first, so a failure is still an ordinary error response.
	rt, err := spdy.NewRoundTripperWithConfig(spdy.RoundTripperConfig{TLS: s.kubeletTLSConfig(), Proxier: noProxy})
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	preq, err := http.NewRequestWithContext(r.Context(), http.MethodPost, loc.String(), nil)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	preq.Header.Set(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
	preq.Header.Set(httpstream.HeaderUpgrade, spdy.HeaderSpdy31)
	for _, p := range gwebsocket.Subprotocols(r) {
		if inner, ok := strings.CutPrefix(p, pfconstants.WebsocketsSPDYTunnelingPrefix); ok {
			preq.Header.Add(httpstream.HeaderProtocolVersion, inner)
		}
	}
	backend, err := rt.Dial(preq)
	if err != nil {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("error dialing backend: %v", err))
	}
	defer backend.Close()
	br := bufio.NewReader(backend)
	resp, err := http.ReadResponse(br, preq)
	if err != nil {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("error dialing backend: %v", err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return apierrors.NewBadRequest(string(trimNL(msg)))
	}

	up := gwebsocket.Upgrader{
		Subprotocols: []string{pfconstants.WebsocketsSPDYTunnelingPortForwardV1},
		// Browsers are not kubectl: credentials decided access already.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return nil // Upgrade answered the client
	}
	tunnel := portforward.NewTunnelingConnection("server", ws)
	defer tunnel.Close()
	var once sync.Once
	done := make(chan struct{})
	finish := func() { once.Do(func() { close(done) }) }
	go func() { _, _ = io.Copy(backend, tunnel); finish() }()
	go func() { _, _ = io.Copy(tunnel, br); finish() }()
	select {
	case <-done:
	case <-r.Context().Done():
	}
	return nil
}
