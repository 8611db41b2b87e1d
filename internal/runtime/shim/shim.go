// Package shim is the process runtime's per-container supervisor, the
// process that `skiff shim` and the skiff-shim binary run, together with the
// on-disk records (container.json, started.json, exit.json, ...) and cgroup
// layout it shares with the process runtime (internal/runtime/process). The
// two sides agree through these files alone. The package is kept free of
// gRPC, protobuf and CRI, so that the shim binary, which every container
// start executes twice, starts in about a millisecond.
package shim

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The shim is a re-exec of the skiff binary (`skiff shim <mode> ...`, or
// the small skiff-shim binary) that owns one container for its whole life,
// so containers outlive the agent, as containerd-shim makes them outlive
// containerd. Its modes:
//
//	start <dir>         the shim proper, started by the runtime in its own
//	                    session (a child of the agent only until the agent
//	                    exits, then of init): cgroup, logs, starts the
//	                    container process, waits, records the exit
//	init <dir>          becomes the container process when that needs
//	                    preparing in the child: bind mounts (in the private
//	                    mount namespace "start" gave it), cgroup v2, user,
//	                    then execve of the container's command. Without
//	                    those, "start" execs the command itself (see
//	                    startsDirectly), which saves a process per container.
//	exec <dir> -- cmd   ExecSync's helper: enters the container's cgroup and
//	                    mount namespace, then execve of cmd
//
// The runtime reads the shim's result from fd 3: "ok" once the container
// runs, an error message otherwise. init and exec report a failure before
// execve on their fd 3, which is close-on-exec, so EOF without a message
// means execve succeeded.
const (
	// ReadyOK is what "start" writes on fd 3 once the container runs.
	ReadyOK = "ok"

	// drainTimeout bounds the wait for a container's output pipes after it
	// exited: a process that escaped the container (a new session without a
	// cgroup) could hold them open forever.
	drainTimeout = 5 * time.Second

	// CleanupTimeout bounds waits for killed processes and busy cgroups.
	CleanupTimeout = 10 * time.Second

	// PollInterval paces waits on things that give no notification: another
	// process's exit, files written by a shim, a cgroup emptying.
	PollInterval = 10 * time.Millisecond
)

// ShimMain is the entry point of the `skiff shim` subcommand; args are the
// arguments after "shim". It returns the process exit code.
func ShimMain(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: skiff shim start|init|exec <container-dir> [-- command...]")
		return 2
	}
	mode, dir := args[0], args[1]
	var err error
	switch mode {
	case "start":
		err = shimStart(dir)
	case "init":
		err = reportFailure(enterAndExec(dir, 0, nil))
	case "exec":
		if len(args) < 4 || args[2] != "--" {
			err = reportFailure(errors.New("exec needs -- and a command"))
			break
		}
		err = reportFailure(shimExec(dir, args[3:]))
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		// init's and exec's stderr belong to the container or the caller,
		// so they have reported on fd 3 instead.
		if mode != "init" && mode != "exec" {
			fmt.Fprintf(os.Stderr, "skiff shim %s %s: %v\n", mode, dir, err)
		}
		return 1
	}
	return 0
}

// reportFailure writes err to fd 3 for init and exec modes.
func reportFailure(err error) error {
	if err != nil {
		f := os.NewFile(3, "failure")
		fmt.Fprint(f, err.Error())
		f.Close()
	}
	return err
}

func shimStart(dir string) error {
	// The runtime waits for EOF on fd 3, so no child may inherit it; nor
	// should the container get whatever else the agent leaked to the shim.
	closeOnExecFrom(3)
	ready := os.NewFile(3, "ready")
	// SIGUSR1 is the runtime's ReopenContainerLog. Caught before shim.json
	// names this process, so the signal's default action (exit) can never
	// kill the shim.
	reopen := make(chan os.Signal, 1)
	signal.Notify(reopen, syscall.SIGUSR1)
	defer signal.Stop(reopen)
	s, err := startContainer(dir)
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, ExitFile)); errors.Is(statErr, os.ErrNotExist) {
			// Recorded as containerd does, so the agent sees why it did not run.
			_ = WriteJSON(filepath.Join(dir, ExitFile), ExitRecord{
				ExitCode: 128, Reason: "StartError", Message: err.Error(), FinishedAt: time.Now().UnixNano()})
		}
		fmt.Fprint(ready, err.Error())
		ready.Close()
		return err
	}
	// The agent may be gone by now; the shim goes on regardless.
	fmt.Fprint(ready, ReadyOK)
	ready.Close()
	// A shim lives as long as its container, one per container: keep the
	// heap small, so each costs about a MB. Done once the container runs,
	// off the path of its start-up. This package's initialisation allocates
	// little, so there is nothing to give back with debug.FreeOSMemory
	// (whose forced GC showed up in profiles of many pods starting at once).
	debug.SetGCPercent(25)
	return s.supervise(reopen)
}

// supervisor is the shim's view of a running container.
type supervisor struct {
	dir       string
	rec       *ContainerRecord
	cmd       *exec.Cmd
	log       *criLog
	stdout    *os.File
	stderr    *os.File
	oomBefore uint64
}

// startContainer gets the container process running, or explains why not.
func startContainer(dir string) (*supervisor, error) {
	self, err := selfRef()
	if err != nil {
		return nil, err
	}
	if err := WriteJSON(filepath.Join(dir, ShimFile), self); err != nil {
		return nil, err
	}
	rec, err := readContainerRecord(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range []string{StartedFile, ExitFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return nil, fmt.Errorf("container %s was already started", rec.ID)
		}
	}
	s := &supervisor{dir: dir, rec: rec}
	if cg := rec.Cgroup; cg != nil {
		if err := cg.create(); err != nil {
			return nil, err
		}
		if s.oomBefore, err = cg.oomKills(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(rec.LogPath), 0o755); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	if s.log, err = openCRILog(rec.LogPath); err != nil {
		return nil, err
	}
	if err := s.startInit(); err != nil {
		s.log.close()
		if rec.Cgroup != nil {
			_ = rec.Cgroup.Remove(time.Now().Add(CleanupTimeout))
		}
		return nil, err
	}
	return s, nil
}

// startInit starts the container process (itself or through `shim init`)
// and waits until it has called execve (or failed to).
func (s *supervisor) startInit() error {
	var pipes [4]*os.File // stdout r/w, stderr r/w
	for i := 0; i < len(pipes); i += 2 {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(pipes[:i]...)
			return fmt.Errorf("create pipe: %w", err)
		}
		pipes[i], pipes[i+1] = r, w
	}
	stdin, err := containerStdin(s.dir, s.rec) // see stdin.go
	if err != nil {
		closeAll(pipes[:]...)
		return err
	}
	if stdin != nil {
		defer stdin.Close() // the container holds it from now on
	}
	var cmd *exec.Cmd
	if startsDirectly(s.rec) {
		cmd, err = s.startDirectly(pipes[1], pipes[3], stdin)
	} else {
		cmd, err = s.startThroughInit(pipes[1], pipes[3], stdin)
	}
	closeAll(pipes[1], pipes[3])
	if err != nil {
		closeAll(pipes[0], pipes[2])
		return err
	}
	startedAt := time.Now()
	// Not yet waited for, so even a process that already exited is a
	// zombie with a readable start time.
	ref, err := RefOf(cmd.Process.Pid)
	if err == nil {
		err = WriteJSON(filepath.Join(s.dir, StartedFile), StartedRecord{ProcRef: ref, StartedAt: startedAt.UnixNano()})
	}
	if err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		closeAll(pipes[0], pipes[2])
		return fmt.Errorf("record container start: %w", err)
	}
	s.cmd, s.stdout, s.stderr = cmd, pipes[0], pipes[2]
	return nil
}

// startsDirectly says whether the shim can exec the container's command
// itself: what init does in the child before execve is then either not
// needed (bind mounts, which need init's private mount namespace) or done
// by the fork itself (user, working directory, a cgroup v1 joined by the
// forking thread; a v2 cgroup is left to init).
func startsDirectly(rec *ContainerRecord) bool {
	return !useMountNamespace(rec) && (rec.Cgroup == nil || !rec.Cgroup.V2 || os.Geteuid() != 0)
}

// startDirectly forks and execs the container's command. Errors read as
// init's would.
func (s *supervisor) startDirectly(stdout, stderr, stdin *os.File) (*exec.Cmd, error) {
	p := s.rec.Process
	path, err := lookPath(p.Args[0], EnvValue(p.Env, "PATH"))
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(p.Cwd); err != nil || !st.IsDir() {
		if err == nil {
			err = &os.PathError{Op: "chdir", Path: p.Cwd, Err: syscall.ENOTDIR}
		}
		return nil, fmt.Errorf("change to working directory: %w", err)
	}
	cmd := &exec.Cmd{Path: path, Args: p.Args, Env: p.Env, Dir: p.Cwd, Stdout: stdout, Stderr: stderr}
	if stdin != nil {
		cmd.Stdin = stdin
	}
	// Its own session makes the container its own process group, which
	// StopContainer signals as a whole.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if u := p.User; u != nil {
		if err := checkUser(u); err != nil {
			return nil, err
		}
		if os.Geteuid() == 0 {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups}
		}
	}
	if cg := s.rec.Cgroup; cg != nil && os.Geteuid() == 0 {
		err = startInCgroup(cmd, cg)
	} else {
		err = cmd.Start()
	}
	if pe := (*os.PathError)(nil); errors.As(err, &pe) {
		// fork/exec <path>: the child's chdir, setuid or execve failed.
		err = fmt.Errorf("exec %q: %w", p.Args[0], pe.Err)
	}
	return cmd, err
}

// startInCgroup starts cmd with its process in the v1 cgroup cg from its
// first instruction. v1 places threads, not only processes, and a child
// inherits the cgroups of the thread that forks it: so a locked thread
// joins cg, forks, and goes back where it was, so that the shim never
// counts among the container's processes, which a stop kills.
func startInCgroup(cmd *exec.Cmd, cg *CgroupSpec) error {
	runtime.LockOSThread()
	restore, err := cg.joinThread(unix.Gettid())
	if err == nil {
		err = cmd.Start()
	}
	if rerr := restore(); rerr != nil {
		// Fail, and so exit, rather than stay among the container's
		// processes. The thread stays locked: Go discards it.
		if err == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
		return errors.Join(err, rerr)
	}
	runtime.UnlockOSThread()
	return err
}

// startThroughInit starts `shim init`, which becomes the container process,
// and waits until it has called execve or reported why it could not.
func (s *supervisor) startThroughInit(stdout, stderr, stdin *os.File) (*exec.Cmd, error) {
	failure, failureW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create pipe: %w", err)
	}
	defer failure.Close()
	argv := append(append([]string{}, s.rec.ShimCommand...), "init", s.dir)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.ExtraFiles = []*os.File{failureW}
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if useMountNamespace(s.rec) {
		// Go makes / recursively private in the new namespace, so the bind
		// mounts init makes never show on the host.
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	}
	err = cmd.Start()
	failureW.Close() // now only init holds it: EOF means execve or exit
	if err != nil {
		return nil, fmt.Errorf("start container process: %w", err)
	}
	if msg, _ := io.ReadAll(failure); len(msg) > 0 {
		_ = cmd.Wait()
		return nil, errors.New(string(msg))
	}
	return cmd, nil
}

// supervise copies the container's output to its log until it exits, then
// records the exit and removes the cgroup.
func (s *supervisor) supervise(reopen <-chan os.Signal) error {
	var copiers sync.WaitGroup
	copiers.Go(func() { _ = s.log.copyStream("stdout", s.stdout) })
	copiers.Go(func() { _ = s.log.copyStream("stderr", s.stderr) })

	stopReopen := make(chan struct{})
	var reopener sync.WaitGroup
	reopener.Go(func() {
		for {
			select {
			case <-reopen:
				_ = s.log.reopen()
			case <-stopReopen:
				return
			}
		}
	})

	_ = s.cmd.Wait()
	finished := time.Now()
	code := ExitCode(s.cmd.ProcessState)
	pid := s.cmd.Process.Pid

	// The container ends with its main process, as it would with a pid
	// namespace: whatever it left behind is killed.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	var errs []error
	if cg := s.rec.Cgroup; cg != nil {
		errs = append(errs, cg.Kill(time.Now().Add(CleanupTimeout)))
	}
	drained := make(chan struct{})
	go func() { copiers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		// Closing unblocks the copiers; the output still held by the
		// escaped process is lost.
	}
	closeAll(s.stdout, s.stderr)
	<-drained
	close(stopReopen)
	reopener.Wait()

	exit := ExitRecord{ExitCode: code, Reason: "Completed", FinishedAt: finished.UnixNano()}
	if code != 0 {
		exit.Reason = "Error"
	}
	if cg := s.rec.Cgroup; cg != nil {
		if after, err := cg.oomKills(); err == nil && after > s.oomBefore {
			exit.ExitCode, exit.Reason = 137, "OOMKilled"
		}
	}
	errs = append(errs, WriteJSON(filepath.Join(s.dir, ExitFile), exit), s.log.close())
	if cg := s.rec.Cgroup; cg != nil {
		errs = append(errs, cg.Remove(time.Now().Add(CleanupTimeout)))
	}
	return errors.Join(errs...)
}

// ExitCode follows the shell convention the kubelet expects: the exit
// status, or 128+signal for a process killed by a signal.
func ExitCode(ps *os.ProcessState) int32 {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return int32(ps.ExitCode())
	}
	if ws.Signaled() {
		return 128 + int32(ws.Signal())
	}
	return int32(ws.ExitStatus())
}

func shimExec(dir string, argv []string) error {
	var st StartedRecord
	if err := ReadJSON(filepath.Join(dir, StartedFile), &st); err != nil {
		return fmt.Errorf("container is not running: %w", err)
	}
	if !st.Alive() {
		return errors.New("container is not running")
	}
	return enterAndExec(dir, st.PID, argv)
}

func readContainerRecord(dir string) (*ContainerRecord, error) {
	var rec ContainerRecord
	if err := ReadJSON(filepath.Join(dir, ContainerFile), &rec); err != nil {
		return nil, fmt.Errorf("read container spec: %w", err)
	}
	if len(rec.ShimCommand) == 0 || len(rec.Process.Args) == 0 {
		return nil, fmt.Errorf("container spec %s is incomplete", dir)
	}
	return &rec, nil
}

// useMountNamespace says whether the container gets a private mount
// namespace: only root can make one, and only bind mounts need one.
func useMountNamespace(rec *ContainerRecord) bool {
	return os.Geteuid() == 0 && len(rec.Process.Mounts) > 0
}

// closeOnExecFrom marks every inherited descriptor from first on
// close-on-exec (Go opens its own so already).
func closeOnExecFrom(first int) {
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= first {
			syscall.CloseOnExec(fd)
		}
	}
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// EnvValue is the value of key in a KEY=VALUE list; the last one wins, as
// in execve's callers.
func EnvValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}
