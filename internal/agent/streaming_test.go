package agent_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/utils/exec"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/runtime/process"
	"github.com/skiff-sh/skiff/internal/runtime/shim"
	"github.com/skiff-sh/skiff/internal/server"
	"github.com/skiff-sh/skiff/internal/testenv"
	"github.com/skiff-sh/skiff/internal/testenv/pftest"
)

// shimEnv makes the test binary act as the process runtime's shim.
const shimEnv = "SKIFF_AGENT_TEST_SHIM"

func TestMain(m *testing.M) {
	if os.Getenv(shimEnv) == "1" {
		os.Exit(shim.ShimMain(os.Args[1:]))
	}
	os.Setenv(shimEnv, "1")
	os.Exit(m.Run())
}

// streamEnv is a server with an agent on the process runtime and a running
// pod whose container sleeps and which serves an echo port.
func streamEnv(t *testing.T) (*testenv.Env, *corev1.Pod, int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "agent")
	rt, err := process.New(process.Options{RootDir: filepath.Join(root, "runtime"), NodeIP: "127.0.0.1", ShimCommand: []string{exe}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = rt.Close(context.Background()) // its streaming server
		if err := process.Reset(filepath.Join(root, "runtime")); err != nil {
			t.Errorf("reset runtime: %v", err)
		}
	})
	env := testenv.Start(t, func(o *server.Options) {
		o.Agent = &agent.Options{NodeName: "n1", RootDir: root, NodeIP: "127.0.0.1", Runtime: rt, Images: rt}
	})
	port := pftest.EchoServer(t)
	ctx := context.Background()
	pod, err := env.Client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "box"},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{
			Name: "main", Image: "busybox", Command: []string{"sleep", "3600"}, WorkingDir: "/usr",
			Env: []corev1.EnvVar{{Name: "WHO", Value: "the pod"}},
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "pod running", func() bool {
		p, err := env.Client.CoreV1().Pods("default").Get(ctx, "box", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning
	})
	return env, pod, port
}

// TestStreamingThroughTheAPIServer runs exec and port-forward with
// client-go's clients, as kubectl does, over every protocol a client may
// pick: the API server translates WebSocket v5 and tunnels port-forward's
// WebSocket, and passes SPDY and older WebSocket versions to the agent.
func TestStreamingThroughTheAPIServer(t *testing.T) {
	env, pod, port := streamEnv(t)
	execURL := func(cmd ...string) *rest.Request {
		return env.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).
			SubResource("exec").VersionedParams(&corev1.PodExecOptions{Container: "main", Command: cmd,
			Stdin: true, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	}
	executors := map[string]func(req *rest.Request) (remotecommand.Executor, error){
		"spdy": func(req *rest.Request) (remotecommand.Executor, error) {
			return remotecommand.NewSPDYExecutor(env.Config, http.MethodPost, req.URL())
		},
		"websocket-v5": func(req *rest.Request) (remotecommand.Executor, error) {
			return remotecommand.NewWebSocketExecutor(env.Config, http.MethodGet, req.URL().String())
		},
		"websocket-v4": func(req *rest.Request) (remotecommand.Executor, error) {
			return remotecommand.NewWebSocketExecutorForProtocols(env.Config, http.MethodGet, req.URL().String(), "v4.channel.k8s.io")
		},
	}
	for name, newExecutor := range executors {
		t.Run("exec-"+name, func(t *testing.T) {
			// head, not cat: WebSocket before v5 cannot close stdin.
			e, err := newExecutor(execURL("sh", "-c", `head -n1; echo "$WHO in $(pwd)"; echo oops >&2; exit 7`))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err = e.StreamWithContext(ctx, remotecommand.StreamOptions{
				Stdin: strings.NewReader("input\n"), Stdout: &stdout, Stderr: &stderr})
			var exitErr utilexec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 7 {
				t.Errorf("exit 7: %v", err)
			}
			if want := "input\nthe pod in /usr\n"; stdout.String() != want || stderr.String() != "oops\n" {
				t.Errorf("stdout %q (want %q), stderr %q", stdout.String(), want, stderr.String())
			}
			// A command that cannot run is an error, not an exit code.
			e, _ = newExecutor(execURL("/no/such/command"))
			err = e.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard})
			if err == nil || errors.As(err, &exitErr) || !strings.Contains(err.Error(), "/no/such/command") {
				t.Errorf("missing command: %v", err)
			}
		})
	}

	pfURL := env.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).
		SubResource("portforward").URL()
	for _, name := range []string{"spdy", "websocket-tunnel"} {
		t.Run("portforward-"+name, func(t *testing.T) {
			transport, upgrader, err := spdy.RoundTripperFor(env.Config)
			if err != nil {
				t.Fatal(err)
			}
			var d httpstream.Dialer = spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, pfURL)
			if name != "spdy" {
				if d, err = portforward.NewSPDYOverWebsocketDialer(pfURL, env.Config); err != nil {
					t.Fatal(err)
				}
			}
			pftest.CheckForward(t, d, port, name)
		})
	}
}
