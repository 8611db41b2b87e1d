package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/skiff-sh/skiff/internal/testenv/pftest"
)

// These tests are kubectl's side of the CRI streaming URLs: client-go's SPDY
// executor and port-forwarder talk to the runtime's streaming server.

func spdyExecutor(t *testing.T, rawURL string) remotecommand.Executor {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	e, err := remotecommand.NewSPDYExecutor(&rest.Config{}, http.MethodPost, u)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestStreamingExec(t *testing.T) {
	f := newFixture(t)
	cfg := config("target", "sleep", "1000")
	cfg.Envs = []*runtimeapi.KeyValue{{Key: "WHO", Value: []byte("container")}}
	cfg.WorkingDir = "/usr"
	id := f.run(cfg)

	resp, err := f.rt.Exec(f.ctx, &runtimeapi.ExecRequest{ContainerId: id, Stdin: true, Stdout: true, Stderr: true,
		Cmd: []string{"sh", "-c", `cat; echo "$WHO $(pwd)"; [ -t 0 ] || echo no-tty; echo oops >&2; exit 3`}})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err = spdyExecutor(t, resp.Url).StreamWithContext(f.ctx, remotecommand.StreamOptions{
		Stdin: strings.NewReader("line 1\nline 2\n"), Stdout: &stdout, Stderr: &stderr})
	var exitErr utilexec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 3 {
		t.Errorf("exec exit 3: %v", err)
	}
	if want := "line 1\nline 2\ncontainer /usr\nno-tty\n"; stdout.String() != want || stderr.String() != "oops\n" {
		t.Errorf("exec: stdout %q (want %q), stderr %q", stdout.String(), want, stderr.String())
	}

	// A URL serves once.
	err = spdyExecutor(t, resp.Url).StreamWithContext(f.ctx, remotecommand.StreamOptions{Stdout: &stdout})
	if err == nil {
		t.Error("a streaming URL served twice")
	}
	if _, err := f.rt.Exec(f.ctx, &runtimeapi.ExecRequest{ContainerId: "nope", Stdout: true, Cmd: []string{"true"}}); err == nil {
		t.Error("exec in a missing container was prepared")
	}
}

// sizes is a TerminalSizeQueue with one size.
type sizes chan remotecommand.TerminalSize

func (s sizes) Next() *remotecommand.TerminalSize {
	size, ok := <-s
	if !ok {
		return nil
	}
	return &size
}

func TestStreamingExecTerminal(t *testing.T) {
	f := newFixture(t)
	id := f.run(config("target", "sleep", "1000"))
	resp, err := f.rt.Exec(f.ctx, &runtimeapi.ExecRequest{ContainerId: id, Stdin: true, Stdout: true, Tty: true, Cmd: []string{"sh"}})
	if err != nil {
		t.Fatal(err)
	}
	size := make(sizes, 1)
	size <- remotecommand.TerminalSize{Width: 99, Height: 33}
	defer close(size)
	in, inW := io.Pipe()
	var out lockedOutput
	done := make(chan error, 1)
	go func() {
		done <- spdyExecutor(t, resp.Url).StreamWithContext(f.ctx, remotecommand.StreamOptions{
			Stdin: in, Stdout: &out, Tty: true, TerminalSizeQueue: size})
	}()
	fmt.Fprintln(inW, `[ -t 0 ] && echo is-a-tty; stty size; echo $((6*7))`)
	poll(t, "the shell's answers", func() bool {
		s := out.String()
		return strings.Contains(s, "is-a-tty") && strings.Contains(s, "33 99") && strings.Contains(s, "42")
	})
	// A resize reaches the terminal while the session runs.
	size <- remotecommand.TerminalSize{Width: 120, Height: 40}
	poll(t, "the new size", func() bool {
		fmt.Fprintln(inW, "stty size")
		time.Sleep(20 * time.Millisecond)
		return strings.Contains(out.String(), "40 120")
	})
	fmt.Fprintln(inW, "exit 2")
	select {
	case err := <-done:
		var exitErr utilexec.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 2 {
			t.Errorf("terminal exit 2: %v\n%s", err, out.String())
		}
	case <-time.After(waitTimeout):
		t.Fatalf("the terminal session did not end:\n%s", out.String())
	}
}

func TestStreamingAttach(t *testing.T) {
	f := newFixture(t)
	cfg := config("talker", "sh", "-c", "echo ready; while read l; do echo got:$l; done")
	cfg.Stdin = true
	id := f.run(cfg)
	f.waitLog(id, "stdout F ready")
	resp, err := f.rt.Attach(f.ctx, &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	in, inW := io.Pipe()
	var out lockedOutput
	done := make(chan error, 1)
	go func() {
		done <- spdyExecutor(t, resp.Url).StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: in, Stdout: &out, Stderr: io.Discard})
	}()
	go func() {
		// Until answered: the attach may start reading the log after the
		// answer to an early line.
		for ctx.Err() == nil && !strings.Contains(out.String(), "got:hi") {
			fmt.Fprintln(inW, "hi")
			time.Sleep(100 * time.Millisecond)
		}
	}()
	poll(t, "the container's answer through attach", func() bool { return strings.Contains(out.String(), "got:hi\n") })
	if err := f.rt.StopContainer(f.ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done: // the container's end ends the attach
	case <-time.After(waitTimeout):
		t.Fatal("attach did not end with the container")
	}
	inW.Close()
}

func TestStreamingPortForward(t *testing.T) {
	f := newFixture(t)
	port := pftest.EchoServer(t) // "in the pod"
	resp, err := f.rt.PortForward(f.ctx, &runtimeapi.PortForwardRequest{PodSandboxId: f.sandboxID})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(resp.Url)
	rt, upgrader, err := spdy.RoundTripperFor(&rest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u)
	pftest.CheckForward(t, dialer, port, "the runtime's streaming server")
}

func TestWriteLogEntry(t *testing.T) {
	for _, tc := range []struct {
		line, out, err string
		noErr          bool
	}{
		{line: "2026-01-02T03:04:05.000000006Z stdout F hello world\n", out: "hello world\n"},
		{line: "2026-01-02T03:04:05Z stdout P part", out: "part"},
		{line: "2026-01-02T03:04:05Z stderr F oops\n", err: "oops\n"},
		{line: "2026-01-02T03:04:05Z stderr F oops\n", out: "oops\n", noErr: true}, // a terminal
		{line: "2026-01-02T03:04:05Z stdout F\n", out: "\n"},
		{line: "garbage\n"},
	} {
		var out, errOut bytes.Buffer
		var ew io.Writer = &errOut
		if tc.noErr {
			ew = nil
		}
		if err := writeLogEntry([]byte(tc.line), &out, ew); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.out || errOut.String() != tc.err {
			t.Errorf("%q: out %q err %q, want %q %q", tc.line, out.String(), errOut.String(), tc.out, tc.err)
		}
	}
}

// lockedOutput is a buffer one goroutine writes while the test reads.
type lockedOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedOutput) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedOutput) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A client that goes away ends its command, even one that neither reads
// input nor writes output.
func TestStreamingExecEndsWhenTheClientGoesAway(t *testing.T) {
	f := newFixture(t)
	id := f.run(config("target", "sleep", "1000"))
	pidFile := t.TempDir() + "/pid"
	resp, err := f.rt.Exec(f.ctx, &runtimeapi.ExecRequest{ContainerId: id, Stdout: true,
		Cmd: []string{"sh", "-c", "echo $$ > " + pidFile + "; exec sleep 1000"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() {
		done <- spdyExecutor(t, resp.Url).StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: io.Discard})
	}()
	var pid int
	poll(t, "the command's pid", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(string(b), &pid)
		return err == nil
	})
	cancel() // the client hangs up
	<-done
	poll(t, "the command to end", func() bool { return !processAlive(pid) })
}

// With stdinOnce the first attach's end of input is the container's, and
// no later attach gets its input.
func TestStreamingAttachStdinOnce(t *testing.T) {
	f := newFixture(t)
	cfg := config("reader", "sh", "-c", "echo ready; cat; echo end-of-input")
	cfg.Stdin, cfg.StdinOnce = true, true
	id := f.run(cfg)
	f.waitLog(id, "stdout F ready")
	resp, err := f.rt.Attach(f.ctx, &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(f.ctx, waitTimeout)
	defer cancel()
	var out lockedOutput
	err = spdyExecutor(t, resp.Url).StreamWithContext(ctx, remotecommand.StreamOptions{
		Stdin: strings.NewReader("some input\n"), Stdout: &out})
	if err != nil {
		t.Errorf("attach: %v", err)
	}
	f.waitLog(id, "stdout F some input")
	f.waitLog(id, "stdout F end-of-input")
	if st := f.waitExited(id); st.ExitCode != 0 {
		t.Errorf("exit code %d", st.ExitCode)
	}
	if fifo, err := f.rt.attachStdin(f.rt.containers[id]); fifo != nil || err != nil {
		t.Errorf("a second attach got the input: %v, %v", fifo, err)
	}
}
