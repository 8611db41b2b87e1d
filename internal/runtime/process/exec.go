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

// execWaitDelay bounds how long ExecSync waits for output after the command
// exited: a background child it left could hold the pipes open forever.
const execWaitDelay = time.Second

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

	failure, w, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("exec in container %s: create pipe: %w", id, err)
	}
	defer failure.Close()
	argv := append(slices.Clone(r.shimCommand), "exec", c.dir, "--")
	argv = append(argv, cmd...)
	ec := exec.CommandContext(runCtx, argv[0], argv[1:]...)
	ec.Dir = "/"
	var stdout, stderr bytes.Buffer
	ec.Stdout, ec.Stderr = &stdout, &stderr
	ec.ExtraFiles = []*os.File{w}
	// A process group of its own, so a timeout kills what the command
	// started as well.
	ec.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	ec.Cancel = func() error { return syscall.Kill(-ec.Process.Pid, syscall.SIGKILL) }
	ec.WaitDelay = execWaitDelay
	err = ec.Start()
	w.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("exec in container %s: start helper: %w", id, err)
	}
	msg, _ := io.ReadAll(failure) // EOF once the helper has exec'd the command
	waitErr := ec.Wait()

	switch {
	case len(msg) > 0:
		return nil, nil, fmt.Errorf("exec in container %s: %s", id, msg)
	case ctx.Err() != nil:
		return stdout.Bytes(), stderr.Bytes(), ctx.Err()
	case runCtx.Err() != nil:
		return stdout.Bytes(), stderr.Bytes(), status.Errorf(codes.DeadlineExceeded,
			"exec in container %s: command %q timed out after %s", id, strings.Join(cmd, " "), timeout)
	case ec.ProcessState == nil:
		return nil, nil, fmt.Errorf("exec in container %s: %w", id, waitErr)
	}
	if code := shim.ExitCode(ec.ProcessState); code != 0 {
		return stdout.Bytes(), stderr.Bytes(), utilexec.CodeExitError{
			Err:  fmt.Errorf("command '%s' exited with %d: %s", strings.Join(cmd, " "), code, stderr.Bytes()),
			Code: int(code),
		}
	}
	if waitErr != nil && !errors.Is(waitErr, exec.ErrWaitDelay) {
		return stdout.Bytes(), stderr.Bytes(), fmt.Errorf("exec in container %s: %w", id, waitErr)
	}
	return stdout.Bytes(), stderr.Bytes(), nil
}
