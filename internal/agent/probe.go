package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probeResult is one probe's outcome.
type probeResult struct {
	ok     bool
	output string
}

// probeState counts consecutive results against a probe's thresholds: a
// pure state machine, as the kubelet's prober worker keeps.
type probeState struct {
	successes, failures int32
	result              bool // the current verdict
	decided             bool // a threshold has been reached at least once
}

// observe records one result and reports whether the verdict changed.
func (s *probeState) observe(ok bool, p *corev1.Probe) bool {
	if ok {
		s.successes++
		s.failures = 0
		if s.successes >= max(p.SuccessThreshold, 1) && (!s.result || !s.decided) {
			s.result, s.decided = true, true
			return true
		}
		return false
	}
	s.failures++
	s.successes = 0
	if s.failures >= max(p.FailureThreshold, 1) && (s.result || !s.decided) {
		s.result, s.decided = false, true
		return true
	}
	return false
}

// prober runs the startup, liveness and readiness probes of running containers.
type prober struct {
	a       *Agent
	mu      sync.Mutex
	workers map[string]*probeWorker // by container ID
}

type probeWorker struct {
	cancel  context.CancelFunc
	mu      sync.Mutex
	started bool // startup probe passed (true without one)
	ready   bool // readiness probe passed (true without one)
}

func newProber(a *Agent) *prober { return &prober{a: a, workers: map[string]*probeWorker{}} }

func probeKey(uid types.UID, id string) string { return string(uid) + "/" + id }

// status reports started and ready for a running container.
func (p *prober) status(uid types.UID, id string, c *corev1.Container) (started, ready bool) {
	p.mu.Lock()
	w, ok := p.workers[probeKey(uid, id)]
	p.mu.Unlock()
	if !ok {
		return c.StartupProbe == nil, c.ReadinessProbe == nil && c.StartupProbe == nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.started, w.ready && w.started
}

// ensure starts probing a running container once; stop ends it.
func (p *prober) ensure(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, uid types.UID) {
	if c.StartupProbe == nil && c.LivenessProbe == nil && c.ReadinessProbe == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.workers[probeKey(uid, id)]; ok {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &probeWorker{cancel: cancel, started: c.StartupProbe == nil, ready: c.ReadinessProbe == nil}
	p.workers[probeKey(uid, id)] = w
	p.a.wg.Add(1)
	go func() {
		defer p.a.wg.Done()
		p.run(wctx, pod.DeepCopy(), c.DeepCopy(), id, uid, w)
	}()
}

// forget stops the probes of the pod's containers that are not in running.
func (p *prober) forget(uid types.UID, running map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prefix := string(uid) + "/"
	for key, w := range p.workers {
		if id, ok := strings.CutPrefix(key, prefix); ok && !running[id] {
			w.cancel()
			delete(p.workers, key)
		}
	}
}

func (p *prober) run(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, uid types.UID, w *probeWorker) {
	type kind struct {
		name  string
		probe *corev1.Probe
		state probeState
		next  time.Time
	}
	start := time.Now()
	var kinds []*kind
	for _, k := range []struct {
		name  string
		probe *corev1.Probe
	}{{"Startup", c.StartupProbe}, {"Liveness", c.LivenessProbe}, {"Readiness", c.ReadinessProbe}} {
		if k.probe != nil {
			kinds = append(kinds, &kind{name: k.name, probe: k.probe, next: start.Add(time.Duration(k.probe.InitialDelaySeconds) * time.Second)})
		}
	}
	for {
		// Sleep until the earliest due probe.
		due := time.Time{}
		for _, k := range kinds {
			if due.IsZero() || k.next.Before(due) {
				due = k.next
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(due)):
		}
		now := time.Now()
		for _, k := range kinds {
			if now.Before(k.next) {
				continue
			}
			k.next = now.Add(time.Duration(max(k.probe.PeriodSeconds, 1)) * time.Second)
			w.mu.Lock()
			started := w.started
			w.mu.Unlock()
			if k.name != "Startup" && !started {
				continue // liveness and readiness wait for the startup probe
			}
			if k.name == "Startup" && started {
				continue
			}
			res := p.a.runProbe(ctx, pod, c, id, k.probe.ProbeHandler, time.Duration(max(k.probe.TimeoutSeconds, 1))*time.Second)
			if ctx.Err() != nil {
				return
			}
			p.a.metrics.probed(k.name, res.ok, pod, c.Name)
			if !res.ok {
				p.a.recorder.Eventf(pod, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", k.name, res.output)
			}
			if !k.state.observe(res.ok, k.probe) {
				continue
			}
			switch k.name {
			case "Startup", "Liveness":
				if k.state.result {
					if k.name == "Startup" {
						w.mu.Lock()
						w.started = true
						w.mu.Unlock()
						p.a.poke(uid)
					}
					continue
				}
				// Failed: restart the container, as the kubelet does.
				p.a.recorder.Eventf(pod, corev1.EventTypeNormal, "Killing", "Container %s failed %s probe, will be restarted", c.Name, strings.ToLower(k.name))
				grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
				if pod.Spec.TerminationGracePeriodSeconds != nil {
					grace = *pod.Spec.TerminationGracePeriodSeconds
				}
				if k.probe.TerminationGracePeriodSeconds != nil {
					grace = *k.probe.TerminationGracePeriodSeconds
				}
				p.a.runHook(ctx, pod, c, id, preStopOf(c), grace)
				_ = p.a.rt.StopContainer(ctx, id, grace)
				p.a.poke(uid)
				return
			case "Readiness":
				w.mu.Lock()
				w.ready = k.state.result
				w.mu.Unlock()
				p.a.poke(uid)
			}
		}
	}
}

func preStopOf(c *corev1.Container) *corev1.LifecycleHandler {
	if c.Lifecycle == nil {
		return nil
	}
	return c.Lifecycle.PreStop
}

// runProbe runs one exec, httpGet or tcpSocket check.
func (a *Agent) runProbe(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, h corev1.ProbeHandler, timeout time.Duration) probeResult {
	switch {
	case h.Exec != nil:
		stdout, stderr, err := a.rt.ExecSync(ctx, id, h.Exec.Command, timeout)
		out := strings.TrimSpace(string(stdout) + string(stderr))
		if err != nil {
			if out == "" {
				out = err.Error()
			}
			return probeResult{false, out}
		}
		return probeResult{true, out}
	case h.HTTPGet != nil:
		return a.httpCheck(ctx, pod, c, h.HTTPGet, timeout)
	case h.TCPSocket != nil:
		port, err := resolvePort(h.TCPSocket.Port, c)
		if err != nil {
			return probeResult{false, err.Error()}
		}
		host := h.TCPSocket.Host
		if host == "" {
			host = a.ip
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), timeout)
		if err != nil {
			return probeResult{false, fmt.Sprintf("dial tcp %s: %v", net.JoinHostPort(host, strconv.Itoa(port)), errText(err))}
		}
		conn.Close()
		return probeResult{true, ""}
	}
	return probeResult{false, "probe has no handler"}
}

func errText(err error) string {
	if oe, ok := err.(*net.OpError); ok && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

func (a *Agent) httpCheck(ctx context.Context, pod *corev1.Pod, c *corev1.Container, g *corev1.HTTPGetAction, timeout time.Duration) probeResult {
	port, err := resolvePort(g.Port, c)
	if err != nil {
		return probeResult{false, err.Error()}
	}
	host := g.Host
	if host == "" {
		host = a.ip
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: g.Path}
	if u.Path == "" {
		u.Path = "/"
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return probeResult{false, err.Error()}
	}
	req.Header.Set("User-Agent", "kube-probe/1.37")
	for _, h := range g.HTTPHeaders {
		req.Header.Add(h.Name, h.Value)
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return probeResult{false, fmt.Sprintf("Get %q: %v", u.String(), errText(err))}
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return probeResult{false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)}
	}
	return probeResult{true, ""}
}

var probeClient = &http.Client{
	// Probes do not follow redirects off the host, like the kubelet's.
	CheckRedirect: func(req *http.Request, via []*http.Request) error { return http.ErrUseLastResponse },
}

// resolvePort turns a named port into the container's number.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("port %q not found in container %s", p.StrVal, c.Name)
}

// runHook runs a postStart or preStop handler, within at most grace seconds.
func (a *Agent) runHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, h *corev1.LifecycleHandler, grace int64) error {
	if h == nil {
		return nil
	}
	timeout := time.Duration(max(grace, 1)) * time.Second
	switch {
	case h.Sleep != nil:
		select {
		case <-time.After(min(time.Duration(h.Sleep.Seconds)*time.Second, timeout)):
		case <-ctx.Done():
		}
		return nil
	case h.Exec != nil:
		_, stderr, err := a.rt.ExecSync(ctx, id, h.Exec.Command, timeout)
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(stderr)))
		}
		return nil
	case h.HTTPGet != nil:
		if r := a.httpCheck(ctx, pod, c, h.HTTPGet, timeout); !r.ok {
			return fmt.Errorf("%s", r.output)
		}
	}
	return nil
}
