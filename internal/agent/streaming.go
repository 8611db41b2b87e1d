package agent

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/proxy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/skiff-sh/skiff/internal/quietlog"
)

// The kubelet's streaming endpoints, as the API server calls them for
// pods/exec, pods/attach and pods/portforward:
//
//	/exec/<namespace>/<pod>/<container>?command=..&input=1&output=1&error=1&tty=1
//	/attach/<namespace>/<pod>/<container>?input=1&output=1&error=1&tty=1
//	/portforward/<namespace>/<pod>[?port=..]
//
// As the kubelet does, the agent asks the runtime (through CRI) for a
// streaming URL and proxies the client's upgraded connection (SPDY or
// WebSocket) there; the runtime's streaming server speaks the protocols.

// serveExec answers /exec/.
func (a *Agent) serveExec(w http.ResponseWriter, r *http.Request) {
	a.serveRemoteCommand(w, r, "/exec/", func(id string, cmd []string, o *remotecommand.Options) (string, error) {
		resp, err := a.rt.Exec(r.Context(), &runtimeapi.ExecRequest{ContainerId: id, Cmd: cmd,
			Tty: o.TTY, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr})
		return resp.GetUrl(), err
	})
}

// serveAttach answers /attach/.
func (a *Agent) serveAttach(w http.ResponseWriter, r *http.Request) {
	a.serveRemoteCommand(w, r, "/attach/", func(id string, _ []string, o *remotecommand.Options) (string, error) {
		resp, err := a.rt.Attach(r.Context(), &runtimeapi.AttachRequest{ContainerId: id,
			Tty: o.TTY, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr})
		return resp.GetUrl(), err
	})
}

// serveRemoteCommand is exec (which needs a command) and attach: find the
// running container, ask the runtime for a streaming URL, proxy the client there.
func (a *Agent) serveRemoteCommand(w http.ResponseWriter, r *http.Request, prefix string,
	streamURL func(id string, cmd []string, o *remotecommand.Options) (string, error)) {
	pod, container, ok := a.streamTarget(w, r, prefix, 3)
	if !ok {
		return
	}
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	exec := prefix == "/exec/"
	cmd := r.URL.Query()["command"]
	if exec && len(cmd) == 0 {
		http.Error(w, "a command is required", http.StatusBadRequest)
		return
	}
	id, ok := a.runningContainerID(w, r, pod, container)
	if !ok {
		return
	}
	u, err := streamURL(id, cmd, opts)
	if err != nil {
		verb := "attach to"
		if exec {
			verb = "exec in"
		}
		http.Error(w, fmt.Sprintf("%s container %q of pod %q: %v", verb, container, pod.Name, err), http.StatusInternalServerError)
		return
	}
	proxyStream(w, r, u)
}

// servePortForward answers /portforward/.
func (a *Agent) servePortForward(w http.ResponseWriter, r *http.Request) {
	pod, _, ok := a.streamTarget(w, r, "/portforward/", 2)
	if !ok {
		return
	}
	var ports []int32
	for _, p := range r.URL.Query()["port"] {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			http.Error(w, fmt.Sprintf("invalid port %q", p), http.StatusBadRequest)
			return
		}
		ports = append(ports, int32(n))
	}
	sb, err := a.podSandbox(r.Context(), pod.UID)
	if err != nil || sb == nil {
		http.Error(w, fmt.Sprintf("pod %q has no running sandbox", pod.Name), http.StatusNotFound)
		return
	}
	resp, err := a.rt.PortForward(r.Context(), &runtimeapi.PortForwardRequest{PodSandboxId: sb.Id, Port: ports})
	if err != nil {
		http.Error(w, fmt.Sprintf("port-forward to pod %q: %v", pod.Name, err), http.StatusInternalServerError)
		return
	}
	proxyStream(w, r, resp.Url)
}

// streamTarget parses <prefix><namespace>/<pod>[/<container>] (n parts)
// and finds the pod on this node.
func (a *Agent) streamTarget(w http.ResponseWriter, r *http.Request, prefix string, n int) (*corev1.Pod, string, bool) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, prefix), "/")
	if len(parts) != n || slices.Contains(parts, "") {
		http.Error(w, "want "+prefix+"<namespace>/<pod>"+strings.Repeat("/<container>", n-2), http.StatusBadRequest)
		return nil, "", false
	}
	pod, err := a.pods.Pods(parts[0]).Get(parts[1])
	if err != nil {
		http.Error(w, fmt.Sprintf("pod %s/%s not found on node %s", parts[0], parts[1], a.opts.NodeName), http.StatusNotFound)
		return nil, "", false
	}
	container := ""
	if n == 3 {
		container = parts[2]
	}
	return pod, container, true
}

// runningContainerID is the runtime's ID of the pod's container, if it runs.
func (a *Agent) runningContainerID(w http.ResponseWriter, r *http.Request, pod *corev1.Pod, name string) (string, bool) {
	pcs, err := a.podContainers(r.Context(), pod.UID)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return "", false
	}
	s := pcs.latest(name)
	if s == nil || s.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		// The kubelet's words, which kubectl users know.
		http.Error(w, fmt.Sprintf("container not found (%q)", name), http.StatusNotFound)
		return "", false
	}
	return s.Id, true
}

// proxyStream hands the client's upgrade request to the runtime's streaming
// server and, once it is upgraded, copies bytes both ways.
func proxyStream(w http.ResponseWriter, r *http.Request, streamURL string) {
	u, err := url.Parse(streamURL)
	if err != nil {
		http.Error(w, fmt.Sprintf("runtime returned a bad streaming URL: %v", err), http.StatusInternalServerError)
		return
	}
	h := proxy.NewUpgradeAwareHandler(u, nil, false, true, proxy.NewErrorResponder(&streamErrorResponder{w: w}))
	h.ServeHTTP(w, r.WithContext(quietlog.Context(r.Context())))
}

// streamErrorResponder reports a failure to reach the streaming server
// before the connection was upgraded.
type streamErrorResponder struct{ w http.ResponseWriter }

func (e *streamErrorResponder) Error(err error) {
	http.Error(e.w, fmt.Sprintf("proxy to the runtime's streaming server: %v", err), http.StatusInternalServerError)
}
