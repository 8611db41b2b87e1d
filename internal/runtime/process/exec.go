package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/skiff-sh/skiff/internal/runtime/shim"
)

// execWaitDelay bounds how long an exec waits for output after the command
// exited: a background child it left could hold the output open forever.
const execWaitDelay = time.Second

// containerExec is a command run in a container through the shim's exec
// mode, which takes the container's environment, working directory and user
// and, as root, enters its cgroup and mount namespace. ExecSync and
// execStream differ only in how they wire its input and output.
type containerExec struct {
	*exec.Cmd
	id  string
	cmd []string
	// The shim writes why it could not exec the command to failureW (its
	// fd 3); the exec closes it, so failure reads EOF on success.
	failure, failureW *os.File
}

// newContainerExec prepares cmd in container c. ctx ending kills the
// command's process group (the group of its own it gets here, or the
// session a caller's SysProcAttr gives it instead), so what the command
// started ends with it. The caller must close it.
func (r *Runtime) newContainerExec(ctx context.Context, c *container, cmd []string) (*containerExec, error) {
	failure, failureW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: create pipe: %w", c.rec.ID, err)
	}
	argv := append(slices.Clone(r.shimCommand), "exec", c.dir, "--")
	argv = append(argv, cmd...)
	ec := exec.CommandContext(ctx, argv[0], argv[1:]...)
	ec.Dir = "/"
	ec.ExtraFiles = []*os.File{failureW}
	ec.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	ec.Cancel = func() error { return syscall.Kill(-ec.Process.Pid, syscall.SIGKILL) }
	return &containerExec{Cmd: ec, id: c.rec.ID, cmd: cmd, failure: failure, failureW: failureW}, nil
}

func (x *containerExec) start() error {
	err := x.Start()
	x.failureW.Close() // the child has its copy
	if err != nil {
		return fmt.Errorf("exec in container %s: start helper: %w", x.id, err)
	}
	return nil
}

// wait waits for the command to end. Its err means the command did not run
// at all; otherwise ProcessState tells how it exited, and waitErr is what
// Wait said besides (ErrWaitDelay: output still held open after the exit).
func (x *containerExec) wait() (waitErr, err error) {
	msg, _ := io.ReadAll(x.failure) // EOF once the helper exec'd the command
	waitErr = x.Wait()
	switch {
	case len(msg) > 0:
		return waitErr, fmt.Errorf("exec in container %s: %s", x.id, msg)
	case x.ProcessState == nil:
		return waitErr, fmt.Errorf("exec in container %s: %w", x.id, waitErr)
	}
	return waitErr, nil
}

// exitError is nil for exit status 0, else a k8s.io/utils/exec.CodeExitError
// (an exec.ExitError: read ExitStatus()), as the kubelet's remote CRI client
// returns, so exec probes treat every runtime alike and the streaming server
// reports the exit code. A non-nil stderr is added to its message.
func (x *containerExec) exitError(stderr *bytes.Buffer) error {
	code := shim.ExitCode(x.ProcessState)
	if code == 0 {
		return nil
	}
	err := fmt.Errorf("command '%s' exited with %d", strings.Join(x.cmd, " "), code)
	if stderr != nil {
		err = fmt.Errorf("%w: %s", err, stderr.Bytes())
	}
	return utilexec.CodeExitError{Err: err, Code: int(code)}
}

func (x *containerExec) close() {
	x.failure.Close()
	x.failureW.Close() // if never started
}

// ExecSync runs cmd in the container: with its environment, working
// directory and user and, as root, in its cgroup and mount namespace. It
// returns the command's output and:
//   - nil when the command exits 0;
//   - a k8s.io/utils/exec.CodeExitError (an exec.ExitError: read
//     ExitStatus()) for a non-zero exit, as the kubelet's remote CRI client
//     returns, so exec probes treat every runtime alike;
//   - a gRPC DeadlineExceeded status error when timeout (if > 0) passed,
//     after killing the command's process group;
//   - another error when the command could not be run at all.
func (r *Runtime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, []byte, error) {
	if len(cmd) == 0 {
		return nil, nil, status.Errorf(codes.InvalidArgument, "exec in container %s: no command", id)
	}
	c, err := r.getContainer(id)
	if err != nil {
		return nil, nil, err
	}
	o, err := c.observe()
	if err != nil {
		return nil, nil, fmt.Errorf("exec in container %s: %w", id, err)
	}
	if o.state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return nil, nil, status.Errorf(codes.FailedPrecondition, "exec in container %s: the container is not running", id)
	}
	runCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	x, err := r.newContainerExec(runCtx, c, cmd)
	if err != nil {
		return nil, nil, err
	}
	defer x.close()
	var stdout, stderr bytes.Buffer
	x.Stdout, x.Stderr = &stdout, &stderr
	x.WaitDelay = execWaitDelay
	if err := x.start(); err != nil {
		return nil, nil, err
	}
	waitErr, err := x.wait()
	if err != nil {
		return nil, nil, err
	}
	switch {
	case ctx.Err() != nil:
		return stdout.Bytes(), stderr.Bytes(), ctx.Err()
	case runCtx.Err() != nil:
		return stdout.Bytes(), stderr.Bytes(), status.Errorf(codes.DeadlineExceeded,
			"exec in container %s: command %q timed out after %s", id, strings.Join(cmd, " "), timeout)
	}
	if err := x.exitError(&stderr); err != nil {
		return stdout.Bytes(), stderr.Bytes(), err
	}
	if waitErr != nil && !errors.Is(waitErr, exec.ErrWaitDelay) {
		return stdout.Bytes(), stderr.Bytes(), fmt.Errorf("exec in container %s: %w", id, waitErr)
	}
	return stdout.Bytes(), stderr.Bytes(), nil
}
