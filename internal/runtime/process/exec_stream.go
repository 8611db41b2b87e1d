package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// execStream runs cmd in the running container id as ExecSync does (the
// shim's exec mode enters the container's cgroup and mount namespace and
// takes its environment, working directory and user), wired to a client's
// streams: with tty, through a new pseudo-terminal whose size follows
// resize. It returns a k8s.io/utils/exec.CodeExitError for a non-zero exit,
// which the streaming server reports as the command's exit code.
func (r *Runtime) execStream(ctx context.Context, id string, cmd []string, in io.Reader, out, errOut io.WriteCloser,
	tty bool, resize <-chan remotecommand.TerminalSize) error {
	if len(cmd) == 0 {
		return errors.New("exec: no command")
	}
	c, err := r.runningContainer(id)
	if err != nil {
		return err
	}
	// The client going away (ctx) ends the command and what it started.
	x, err := r.newContainerExec(ctx, c, cmd)
	if err != nil {
		return err
	}
	defer x.close()
	// The command's input is copied by a goroutine that Wait does not wait
	// for: a client may keep its input open after the command exited.
	var stdinW *os.File
	var term *os.File // the terminal's controlling side, with tty
	output := make(chan struct{})
	if tty {
		ptmx, pts, err := pty.Open()
		if err != nil {
			return fmt.Errorf("exec in container %s: open pseudo-terminal: %w", id, err)
		}
		defer pts.Close()
		term = ptmx
		defer term.Close()
		x.Stdin, x.Stdout, x.Stderr = pts, pts, pts
		// A session of its own with the terminal as its controlling
		// terminal, as a login shell expects (job control, ^C).
		x.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	} else {
		if in != nil {
			var stdinR *os.File
			if stdinR, stdinW, err = os.Pipe(); err != nil {
				return fmt.Errorf("exec in container %s: create pipe: %w", id, err)
			}
			defer stdinR.Close()
			defer stdinW.Close()
			x.Stdin = stdinR
		}
		if out != nil {
			x.Stdout = out
		}
		if errOut != nil {
			x.Stderr = errOut
		}
		// A background process the command left could hold the output
		// open forever.
		x.WaitDelay = execWaitDelay
		close(output)
	}
	if err := x.start(); err != nil {
		return err
	}
	pid := x.Process.Pid
	waited := make(chan struct{})
	if tty {
		x.Stdin.(*os.File).Close() // the child holds the terminal now
		if in != nil {
			go func() {
				_, _ = io.Copy(term, in)
				// The client's input ended: it hung up, as a terminal does,
				// so the session gets SIGHUP rather than living on unseen.
				select {
				case <-waited: // gone already; its pid may be another's now
				default:
					_ = syscall.Kill(-pid, syscall.SIGHUP)
				}
			}()
		}
		go func() {
			// Ends with EIO once every process closed the terminal.
			if out != nil {
				_, _ = io.Copy(out, term)
			} else {
				_, _ = io.Copy(io.Discard, term)
			}
			close(output)
		}()
		go func() {
			for {
				select {
				case size, ok := <-resize:
					if !ok {
						return
					}
					setSize(term, size)
				case <-output:
					return
				}
			}
		}()
	} else if stdinW != nil {
		go func() {
			_, _ = io.Copy(stdinW, in)
			stdinW.Close() // the client's end of input is the command's
		}()
	}
	_, err = x.wait()
	close(waited)
	if tty {
		select {
		case <-output:
		case <-time.After(execWaitDelay):
			// A background process still holds the terminal; closing our
			// side (deferred) ends the copy.
		}
	}
	if err != nil {
		return err
	}
	return x.exitError(nil)
}

// setSize sets the terminal's size. Unlike pty.Setsize it goes through
// SyscallConn, which is safe while another goroutine closes the terminal
// and leaves it non-blocking.
func setSize(term *os.File, size remotecommand.TerminalSize) {
	sc, err := term.SyscallConn()
	if err != nil {
		return
	}
	_ = sc.Control(func(fd uintptr) {
		_ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: size.Height, Col: size.Width})
	})
}
