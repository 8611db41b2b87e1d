package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/runtime/shim"
)

// stdinUsedFile marks that the first attach of a stdinOnce container had
// its input (see shim.StdinAttachedFile), so no later attach gets it.
const stdinUsedFile = "stdin.used"

// attachStdin opens the container's input for an attach: nil for a
// stdinOnce container whose input a previous attach had.
func (r *Runtime) attachStdin(c *container) (*os.File, error) {
	if c.config.GetStdinOnce() {
		first, err := shim.CreateJSON(filepath.Join(c.dir, stdinUsedFile), true)
		if err != nil {
			return nil, err
		}
		if !first {
			return nil, nil
		}
	}
	fifo, err := os.OpenFile(filepath.Join(c.dir, shim.StdinFile), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open its input: %w", err)
	}
	if c.config.GetStdinOnce() {
		// The shim waits in an open for reading; this open ends its wait.
		// (A shim that only just started may not wait yet: ENXIO.)
		var f *os.File
		for range 50 {
			if f, err = os.OpenFile(filepath.Join(c.dir, shim.StdinAttachedFile), os.O_WRONLY|syscall.O_NONBLOCK, 0); !errors.Is(err, syscall.ENXIO) {
				break
			}
			time.Sleep(pollInterval)
		}
		if err != nil {
			fifo.Close()
			return nil, fmt.Errorf("hand its input over: %w", err)
		}
		f.Close()
	}
	return fifo, nil
}

// attachFollowInterval paces the reads of a container's log while attached:
// the shim gives no notification of new output.
const attachFollowInterval = 50 * time.Millisecond

// attachStream connects a client to a running container: its output as the
// shim logs it from now on (whole lines: the log is line-framed), and its
// input, if the container was created with stdin, until the container
// exits or the client goes away.
func (r *Runtime) attachStream(ctx context.Context, id string, in io.Reader, out, errOut io.WriteCloser) error {
	c, err := r.runningContainer(id)
	if err != nil {
		return err
	}
	f, err := os.Open(c.rec.LogPath)
	if err != nil {
		return fmt.Errorf("attach to container %s: open its log: %w", id, err)
	}
	defer f.Close()
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("attach to container %s: %w", id, err)
	}
	// Input only now: what answers it is logged after this point.
	if in != nil && c.config.GetStdin() {
		fifo, err := r.attachStdin(c)
		if err != nil {
			return fmt.Errorf("attach to container %s: %w", id, err)
		}
		if fifo != nil {
			defer fifo.Close()
			go func() {
				_, _ = io.Copy(fifo, in)
				fifo.Close() // with stdinOnce, the container's end of input
			}()
		}
	}
	br := bufio.NewReader(f)
	var pending []byte // a line not yet complete in the file
	exited := false
	tick := time.NewTicker(attachFollowInterval)
	defer tick.Stop()
	for {
		line, err := br.ReadBytes('\n')
		pending = append(pending, line...)
		if err == nil {
			if werr := writeLogEntry(pending, out, errOut); werr != nil {
				return nil // the client went away
			}
			pending = pending[:0]
			continue
		}
		if !errors.Is(err, io.EOF) {
			return fmt.Errorf("attach to container %s: read its log: %w", id, err)
		}
		// Caught up: done once the container exited (the shim logged all
		// it had before recording the exit: one more pass reads it), else
		// wait for more.
		if exited {
			return nil
		}
		if o, oerr := c.observe(); oerr != nil || o.state != runtimeapi.ContainerState_CONTAINER_RUNNING {
			exited = true
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// writeLogEntry writes the text of one CRI log line to the writer of its
// stream; a full line gets its newline back. It skips a malformed line.
func writeLogEntry(line []byte, out, errOut io.Writer) error {
	e, err := shim.ParseLogEntry(line)
	if err != nil {
		return nil
	}
	w := out
	if e.Stream == "stderr" && errOut != nil {
		w = errOut // without it (a terminal) stderr joins stdout
	}
	if w == nil {
		return nil
	}
	text := e.Text
	if !e.Partial {
		text = append(text, '\n')
	}
	_, err = w.Write(text)
	return err
}
