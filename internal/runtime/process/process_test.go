package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/skiff-sh/skiff/internal/runtime/shim"
)

// shimEnv makes the test binary act as the shim: the tests set it for
// themselves and so for every shim they start.
const shimEnv = "SKIFF_PROCESS_TEST_SHIM"

func TestMain(m *testing.M) {
	if os.Getenv(shimEnv) == "1" {
		os.Exit(shim.ShimMain(os.Args[1:]))
	}
	os.Setenv(shimEnv, "1")
	// Under -race every exiting shim would otherwise sleep a second for
	// late race reports.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	os.Exit(m.Run())
}

// waitTimeout bounds every poll; generous because -race slows each re-exec.
const waitTimeout = 30 * time.Second

type fixture struct {
	t         *testing.T
	ctx       context.Context
	opts      Options
	rt        *Runtime
	sandboxID string
	sbConfig  *runtimeapi.PodSandboxConfig
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := &fixture{t: t, ctx: t.Context(), opts: Options{
		RootDir:     filepath.Join(dir, "runtime"),
		NodeIP:      "192.0.2.10",
		ShimCommand: []string{exe},
	}}
	f.rt, err = New(f.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.dumpShimLogs()
		if err := Reset(f.opts.RootDir); err != nil {
			t.Errorf("reset: %v", err)
		}
	})
	f.sbConfig = &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "pod", Namespace: "default", Uid: "uid-1"},
		LogDirectory: filepath.Join(dir, "logs"),
		Labels:       map[string]string{"app": "test"},
	}
	if f.sandboxID, err = f.rt.RunPodSandbox(f.ctx, f.sbConfig, ""); err != nil {
		t.Fatal(err)
	}
	return f
}

// dumpShimLogs shows what the shims said, when a test failed or -v asks.
func (f *fixture) dumpShimLogs() {
	if !f.t.Failed() && !testing.Verbose() {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(f.opts.RootDir, shim.ContainersDir, "*", shim.ShimLogFile))
	for _, l := range logs {
		if data, _ := os.ReadFile(l); len(data) > 0 {
			f.t.Logf("%s:\n%s", l, data)
		}
	}
}

func config(name string, argv ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: "busybox:1.36"},
		Command:  argv,
		LogPath:  name + ".log",
		Labels:   map[string]string{"name": name},
	}
}

func (f *fixture) create(cfg *runtimeapi.ContainerConfig) string {
	f.t.Helper()
	id, err := f.rt.CreateContainer(f.ctx, f.sandboxID, cfg, f.sbConfig)
	if err != nil {
		f.t.Fatalf("create container: %v", err)
	}
	return id
}

func (f *fixture) run(cfg *runtimeapi.ContainerConfig) string {
	f.t.Helper()
	id := f.create(cfg)
	if err := f.rt.StartContainer(f.ctx, id); err != nil {
		f.t.Fatalf("start container: %v", err)
	}
	return id
}

func (f *fixture) status(id string) *runtimeapi.ContainerStatus {
	f.t.Helper()
	resp, err := f.rt.ContainerStatus(f.ctx, id, true)
	if err != nil {
		f.t.Fatalf("container status: %v", err)
	}
	return resp.Status
}

func (f *fixture) pid(id string) int {
	f.t.Helper()
	resp, err := f.rt.ContainerStatus(f.ctx, id, true)
	if err != nil {
		f.t.Fatalf("container status: %v", err)
	}
	pid, err := strconv.Atoi(resp.Info["pid"])
	if err != nil {
		f.t.Fatalf("pid in status info %v: %v", resp.Info, err)
	}
	return pid
}

func (f *fixture) waitExited(id string) *runtimeapi.ContainerStatus {
	f.t.Helper()
	var st *runtimeapi.ContainerStatus
	poll(f.t, "container to exit", func() bool {
		st = f.status(id)
		return st.State == runtimeapi.ContainerState_CONTAINER_EXITED
	})
	return st
}

// logEntries reads a CRI log, checking every line's format.
func (f *fixture) logEntries(id string) []string {
	f.t.Helper()
	data, err := os.ReadFile(f.status(id).LogPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		m := criLine.FindStringSubmatch(line)
		if m == nil {
			f.t.Fatalf("log line %q is not in CRI format", line)
		}
		if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
			f.t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m[2]+" "+m[3]+" "+m[4])
	}
	return out
}

var criLine = regexp.MustCompile(`^(\S+) (stdout|stderr) (F|P) (.*)$`)

func (f *fixture) waitLog(id, want string) {
	f.t.Helper()
	poll(f.t, "log entry "+want, func() bool {
		for _, e := range f.logEntries(id) {
			if e == want {
				return true
			}
		}
		return false
	})
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(pollInterval)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: cgroups, mount namespaces and other users are root-only")
	}
}

func processAlive(pid int) bool {
	ref, err := shim.RefOf(pid)
	return err == nil && ref.Alive()
}

func TestExitCodeAndLogs(t *testing.T) {
	f := newFixture(t)
	id := f.run(config("fail", "sh", "-c", "echo hi; echo err >&2; exit 3"))
	st := f.waitExited(id)
	if st.ExitCode != 3 || st.Reason != "Error" {
		t.Errorf("exit code %d reason %q, want 3 Error", st.ExitCode, st.Reason)
	}
	if st.StartedAt == 0 || st.FinishedAt < st.StartedAt || st.CreatedAt > st.StartedAt {
		t.Errorf("times created %d started %d finished %d", st.CreatedAt, st.StartedAt, st.FinishedAt)
	}
	if st.Labels["name"] != "fail" || st.Image.GetImage() != "busybox:1.36" || st.Metadata.GetName() != "fail" {
		t.Errorf("status does not echo the config: %v", st)
	}
	if want := filepath.Join(f.sbConfig.LogDirectory, "fail.log"); st.LogPath != want {
		t.Errorf("log path %q, want %q", st.LogPath, want)
	}
	got := strings.Join(f.logEntries(id), "\n")
	for _, want := range []string{"stdout F hi", "stderr F err"} {
		if !strings.Contains(got, want) {
			t.Errorf("log %q lacks %q", got, want)
		}
	}
}

func TestCompletedContainer(t *testing.T) {
	f := newFixture(t)
	st := f.waitExited(f.run(config("ok", "true")))
	if st.ExitCode != 0 || st.Reason != "Completed" {
		t.Errorf("exit code %d reason %q, want 0 Completed", st.ExitCode, st.Reason)
	}
}

func TestContainerWithoutCommandIsRejected(t *testing.T) {
	f := newFixture(t)
	cfg := config("web")
	cfg.Image.Image = "nginx:1.27"
	_, err := f.rt.CreateContainer(f.ctx, f.sandboxID, cfg, f.sbConfig)
	want := "the process runtime cannot run image nginx:1.27: the container has no command"
	if err == nil || status.Convert(err).Message() != want {
		t.Fatalf("create without command: %v, want %q", err, want)
	}
}

func TestStartErrorIsRecorded(t *testing.T) {
	f := newFixture(t)
	id := f.create(config("missing", "no-such-command-anywhere"))
	err := f.rt.StartContainer(f.ctx, id)
	if err == nil || !strings.Contains(err.Error(), "executable file not found") {
		t.Fatalf("start: %v, want executable file not found", err)
	}
	st := f.status(id)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.Reason != "StartError" || st.ExitCode != 128 {
		t.Errorf("state %v reason %q exit %d, want EXITED StartError 128", st.State, st.Reason, st.ExitCode)
	}
}

func TestContainerSurvivesRuntimeAndIsAdopted(t *testing.T) {
	f := newFixture(t)
	id := f.run(config("sleeper", "sleep", "1000"))
	pid := f.pid(id)

	// A new Runtime on the same root, as after an agent restart.
	f.rt = nil
	rt, err := New(f.opts)
	if err != nil {
		t.Fatal(err)
	}
	f.rt = rt
	st := f.status(id)
	if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || f.pid(id) != pid || !processAlive(pid) {
		t.Fatalf("adopted container: state %v pid %d (was %d), alive %v", st.State, f.pid(id), pid, processAlive(pid))
	}
	sbs, err := rt.ListPodSandbox(f.ctx, nil)
	if err != nil || len(sbs) != 1 || sbs[0].Id != f.sandboxID {
		t.Fatalf("adopted sandboxes: %v, %v", sbs, err)
	}
	if err := rt.StopContainer(f.ctx, id, 10); err != nil {
		t.Fatal(err)
	}
	st = f.status(id)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 128+int32(syscall.SIGTERM) {
		t.Errorf("after stop: state %v exit %d, want EXITED %d", st.State, st.ExitCode, 128+syscall.SIGTERM)
	}
	if processAlive(pid) {
		t.Errorf("process %d still runs", pid)
	}
	// Stop is idempotent.
	if err := rt.StopContainer(f.ctx, id, 10); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestStopKillsProcessIgnoringSIGTERMAfterTimeout(t *testing.T) {
	f := newFixture(t)
	id := f.run(config("stubborn", "sh", "-c", `trap "" TERM; echo ready; sleep 1000`))
	f.waitLog(id, "stdout F ready") // the trap is set
	const timeout = 2
	start := time.Now()
	if err := f.rt.StopContainer(f.ctx, id, timeout); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if took < timeout*time.Second || took > timeout*time.Second+10*time.Second {
		t.Errorf("stop took %v, want about %ds", took, timeout)
	}
	if st := f.status(id); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 {
		t.Errorf("state %v exit %d, want EXITED 137", st.State, st.ExitCode)
	}
}

func TestEnvWorkingDirAndUser(t *testing.T) {
	f := newFixture(t)
	cfg := config("env", "sh", "-c", `echo "$GREETING|$(pwd)|$(id -u)|$(id -g)"`)
	cfg.Envs = []*runtimeapi.KeyValue{{Key: "GREETING", Value: []byte("hello world")}}
	cfg.WorkingDir = "/usr"
	wantUID, wantGID := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		wantUID, wantGID = 65534, 65534 // nobody, nogroup in /etc/passwd
		cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			RunAsUser: &runtimeapi.Int64Value{Value: 65534}}}
	}
	id := f.run(cfg)
	if st := f.waitExited(id); st.ExitCode != 0 {
		t.Fatalf("exit code %d, log %v", st.ExitCode, f.logEntries(id))
	}
	want := "stdout F hello world|/usr|" + strconv.Itoa(wantUID) + "|" + strconv.Itoa(wantGID)
	if got := f.logEntries(id); len(got) != 1 || got[0] != want {
		t.Errorf("log %q, want %q", got, want)
	}
}

func TestOOMKilled(t *testing.T) {
	requireRoot(t)
	f := newFixture(t)
	if f.rt.cgroups == nil {
		t.Skip("no usable cgroups on this machine")
	}
	cfg := config("hog", "sh", "-c", `x=$(head -c 200000000 /dev/zero | tr "\0" x); sleep 1`)
	cfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
		MemoryLimitInBytes: 32 << 20}}
	st := f.waitExited(f.run(cfg))
	if st.ExitCode != 137 || st.Reason != "OOMKilled" {
		t.Errorf("exit %d reason %q, want 137 OOMKilled", st.ExitCode, st.Reason)
	}
}

func TestBindMountAndExecInMountNamespace(t *testing.T) {
	requireRoot(t)
	f := newFixture(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "greeting"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "data") // does not exist on the host yet
	cfg := config("mounter", "sh", "-c", `cat `+target+`/greeting; echo; touch `+target+`/x 2>/dev/null && echo writable || echo read-only; sleep 1000`)
	cfg.Mounts = []*runtimeapi.Mount{{HostPath: host, ContainerPath: target, Readonly: true}}
	id := f.run(cfg)
	f.waitLog(id, "stdout F read-only")
	f.waitLog(id, "stdout F from the host")
	if _, err := os.Stat(filepath.Join(target, "greeting")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the bind mount leaked to the host: %v", err)
	}
	stdout, _, err := f.rt.ExecSync(f.ctx, id, []string{"cat", target + "/greeting"}, 10*time.Second)
	if err != nil || string(stdout) != "from the host" {
		t.Errorf("exec sees %q, %v; want the mounted file", stdout, err)
	}
}

func TestExecSync(t *testing.T) {
	f := newFixture(t)
	cfg := config("target", "sleep", "1000")
	cfg.Envs = []*runtimeapi.KeyValue{{Key: "WHO", Value: []byte("container")}}
	cfg.WorkingDir = "/usr"
	id := f.run(cfg)

	stdout, stderr, err := f.rt.ExecSync(f.ctx, id, []string{"sh", "-c", `echo "$WHO $(pwd)"; echo oops >&2`}, 10*time.Second)
	if err != nil || string(stdout) != "container /usr\n" || string(stderr) != "oops\n" {
		t.Errorf("exec: stdout %q stderr %q err %v", stdout, stderr, err)
	}

	_, _, err = f.rt.ExecSync(f.ctx, id, []string{"sh", "-c", "exit 4"}, 10*time.Second)
	var exitErr utilexec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitStatus() != 4 {
		t.Errorf("exec exit 4: %v", err)
	}

	_, _, err = f.rt.ExecSync(f.ctx, id, []string{"sleep", "1000"}, 200*time.Millisecond)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("exec past its timeout: %v, want DeadlineExceeded", err)
	}
}

func TestListFiltersAndSandboxLifecycle(t *testing.T) {
	f := newFixture(t)
	done := f.run(config("done", "true"))
	f.waitExited(done)
	running := f.run(config("running", "sleep", "1000"))

	byState := func(s runtimeapi.ContainerState) *runtimeapi.ContainerFilter {
		return &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: s}}
	}
	for _, tc := range []struct {
		name   string
		filter *runtimeapi.ContainerFilter
		want   []string
	}{
		{"all", nil, []string{done, running}},
		{"running", byState(runtimeapi.ContainerState_CONTAINER_RUNNING), []string{running}},
		{"exited", byState(runtimeapi.ContainerState_CONTAINER_EXITED), []string{done}},
		{"id", &runtimeapi.ContainerFilter{Id: done}, []string{done}},
		{"label", &runtimeapi.ContainerFilter{LabelSelector: map[string]string{"name": "running"}}, []string{running}},
		{"sandbox", &runtimeapi.ContainerFilter{PodSandboxId: f.sandboxID}, []string{done, running}},
		{"other sandbox", &runtimeapi.ContainerFilter{PodSandboxId: "nope"}, nil},
	} {
		got, err := f.rt.ListContainers(f.ctx, tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range got {
			ids = append(ids, c.Id)
		}
		if strings.Join(ids, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: got %v, want %v", tc.name, ids, tc.want)
		}
	}

	sb, err := f.rt.PodSandboxStatus(f.ctx, f.sandboxID, false)
	if err != nil {
		t.Fatal(err)
	}
	if s := sb.Status; s.State != runtimeapi.PodSandboxState_SANDBOX_READY || s.Network.GetIp() != "192.0.2.10" ||
		s.Labels["app"] != "test" || s.Metadata.GetName() != "pod" || s.CreatedAt == 0 {
		t.Errorf("sandbox status %v", s)
	}

	if err := f.rt.StopPodSandbox(f.ctx, f.sandboxID); err != nil {
		t.Fatal(err)
	}
	if st := f.status(running); st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("container after sandbox stop: %v", st.State)
	}
	notReady, _ := f.rt.ListPodSandbox(f.ctx, &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}})
	if len(notReady) != 1 {
		t.Errorf("not-ready sandboxes: %v", notReady)
	}

	logPath := f.status(done).LogPath
	if err := f.rt.RemovePodSandbox(f.ctx, f.sandboxID); err != nil {
		t.Fatal(err)
	}
	if left, _ := f.rt.ListContainers(f.ctx, nil); len(left) != 0 {
		t.Errorf("containers left after sandbox removal: %v", left)
	}
	if _, err := os.Stat(logPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("log of a removed container: %v", err)
	}
	if err := f.rt.RemovePodSandbox(f.ctx, f.sandboxID); err != nil {
		t.Errorf("removing twice: %v", err)
	}
}

func TestStats(t *testing.T) {
	f := newFixture(t)
	id := f.run(config("busy", "sh", "-c", "while :; do :; done"))
	poll(t, "CPU and memory usage", func() bool {
		st, err := f.rt.ContainerStats(f.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return st.Cpu.UsageCoreNanoSeconds.Value > 0 && st.Memory.WorkingSetBytes.Value > 0 && st.Cpu.Timestamp > 0
	})
	list, err := f.rt.ListContainerStats(f.ctx, &runtimeapi.ContainerStatsFilter{PodSandboxId: f.sandboxID})
	if err != nil || len(list) != 1 || list[0].Attributes.Id != id {
		t.Errorf("list stats: %v, %v", list, err)
	}
}

func TestReopenContainerLog(t *testing.T) {
	f := newFixture(t)
	id := f.run(config("chatty", "sh", "-c", "while :; do echo tick; sleep 0.05; done"))
	f.waitLog(id, "stdout F tick")
	logPath := f.status(id).LogPath
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := f.rt.ReopenContainerLog(f.ctx, id); err != nil {
		t.Fatal(err)
	}
	f.waitLog(id, "stdout F tick")
}

func TestVersionStatusAndImages(t *testing.T) {
	f := newFixture(t)
	v, err := f.rt.Version(f.ctx, "")
	if err != nil || v.RuntimeName != "process" || v.RuntimeVersion != "0.1.0" || v.RuntimeApiVersion != "v1" {
		t.Errorf("version %v, %v", v, err)
	}
	st, err := f.rt.Status(f.ctx, false)
	if err != nil || len(st.Status.Conditions) != 2 || !st.Status.Conditions[0].Status || !st.Status.Conditions[1].Status {
		t.Errorf("status %v, %v", st, err)
	}
	ref, err := f.rt.PullImage(f.ctx, &runtimeapi.ImageSpec{Image: "alpine:3"}, nil, nil)
	if err != nil || ref != "alpine:3" {
		t.Errorf("pull: %q, %v", ref, err)
	}
	img, err := f.rt.ImageStatus(f.ctx, &runtimeapi.ImageSpec{Image: "redis"}, false)
	if err != nil || img.Image.GetId() != "redis" {
		t.Errorf("image status: %v, %v", img, err)
	}
	f.create(config("c", "true"))
	imgs, err := f.rt.ListImages(f.ctx, nil)
	if err != nil || len(imgs) != 2 || imgs[0].Id != "alpine:3" || imgs[1].Id != "busybox:1.36" {
		t.Errorf("images: %v, %v", imgs, err)
	}
	fs, err := f.rt.ImageFsInfo(f.ctx)
	if err != nil || len(fs.ImageFilesystems) != 1 || fs.ImageFilesystems[0].UsedBytes.GetValue() == 0 {
		t.Errorf("image fs: %v, %v", fs, err)
	}
	if err := f.rt.CheckpointContainer(f.ctx, nil); status.Code(err) != codes.Unimplemented {
		t.Errorf("checkpoint: %v, want Unimplemented", err) // streaming: stream_test.go
	}
}

func TestConcurrentContainers(t *testing.T) {
	f := newFixture(t)
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs <- func() error {
				id, err := f.rt.CreateContainer(f.ctx, f.sandboxID, config("c"+strconv.Itoa(i), "sh", "-c", "exit "+strconv.Itoa(i)), f.sbConfig)
				if err != nil {
					return err
				}
				if err := f.rt.StartContainer(f.ctx, id); err != nil {
					return err
				}
				deadline := time.Now().Add(waitTimeout)
				var st *runtimeapi.ContainerStatus
				for st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED {
					if time.Now().After(deadline) {
						return fmt.Errorf("container %d did not exit", i)
					}
					time.Sleep(pollInterval)
					resp, err := f.rt.ContainerStatus(f.ctx, id, false)
					if err != nil {
						return err
					}
					st = resp.Status
				}
				if err := f.rt.StopContainer(f.ctx, id, 5); err != nil { // a no-op now
					return err
				}
				if got := st.ExitCode; got != int32(i) {
					return fmt.Errorf("container %d exited %d", i, got)
				}
				return f.rt.RemoveContainer(f.ctx, id)
			}()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if left, _ := f.rt.ListContainers(f.ctx, nil); len(left) != 0 {
		t.Errorf("containers left: %d", len(left))
	}
}

// A container the shim starts itself (no bind mounts) is in its cgroup
// from the start, alone: the shim's forking thread left it again. It
// inherits no descriptor beyond stdio, in particular not the shim's
// verdict pipe, which the runtime reads to EOF.
func TestDirectStartCgroupAndDescriptors(t *testing.T) {
	f := newFixture(t)
	cfg := config("direct", "sh", "-c", `cat /proc/self/cgroup; exec sleep 1000`)
	cfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20}}
	id := f.run(cfg)
	pid := f.pid(id)
	poll(t, "the shell to exec sleep", func() bool {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return strings.HasPrefix(string(cmdline), "sleep\x00")
	})
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fd := range fds {
		names = append(names, fd.Name())
	}
	if strings.Join(names, " ") != "0 1 2" {
		t.Errorf("the container holds descriptors %v, want only 0 1 2", names)
	}
	c, err := f.rt.getContainer(id)
	if err != nil {
		t.Fatal(err)
	}
	if c.rec.Cgroup == nil {
		return // not root, or no cgroups: nothing more to check
	}
	for _, d := range c.rec.Cgroup.UniqueDirs() {
		data, err := os.ReadFile(filepath.Join(d, "tasks"))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Fields(string(data)); len(got) != 1 || got[0] != strconv.Itoa(pid) {
			t.Errorf("%s/tasks = %v, want only the container process %d", d, got, pid)
		}
	}
	// cat, the container's first child, was in the container's cgroup.
	rel := strings.TrimPrefix(c.rec.Cgroup.Dir("memory"), filepath.Join(shim.CgroupRoot, "memory"))
	if c.rec.Cgroup.V2 {
		rel = strings.TrimPrefix(c.rec.Cgroup.Dir(shim.UnifiedKey), shim.CgroupRoot)
	}
	poll(t, "cat's output", func() bool {
		for _, e := range f.logEntries(id) {
			if strings.HasSuffix(e, ":"+rel) {
				return true
			}
		}
		return false
	})
}

// The runtime reaps its shims once they exit, without a thread blocked in
// wait for each running one.
func TestShimsReapedWithoutAThreadEach(t *testing.T) {
	f := newFixture(t)
	// Threads of this process asleep in wait4 or waitid.
	waiting := func() int {
		n := 0
		wchans, _ := filepath.Glob("/proc/self/task/*/wchan")
		for _, w := range wchans {
			if data, _ := os.ReadFile(w); string(data) == "do_wait" {
				n++
			}
		}
		return n
	}
	const n = 12
	var ids []string
	for i := range n {
		ids = append(ids, f.run(config(fmt.Sprintf("c%d", i), "sleep", "1000")))
	}
	if w := waiting(); w >= n {
		t.Errorf("%d threads wait with %d running shims", w, n)
	}
	for _, id := range ids {
		c, err := f.rt.getContainer(id)
		if err != nil {
			t.Fatal(err)
		}
		var shimProc shim.ProcRef
		if err := shim.ReadJSON(filepath.Join(c.dir, shim.ShimFile), &shimProc); err != nil {
			t.Fatal(err)
		}
		if err := f.rt.StopContainer(f.ctx, id, 0); err != nil {
			t.Fatal(err)
		}
		poll(t, "the shim to be reaped", func() bool {
			_, err := os.Stat(fmt.Sprintf("/proc/%d", shimProc.PID))
			return errors.Is(err, os.ErrNotExist)
		})
	}
}
