package shim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// StdinFile is the FIFO a container created with stdin: true reads as its
// standard input (see containerStdin); each attach writes to it.
const StdinFile = "stdin"

// StdinAttachedFile is the FIFO whose opening tells the shim of a stdinOnce
// container that the first attach holds its input; the runtime's
// stdinUsedFile marks that this happened, so no later attach gets the input.
const StdinAttachedFile = "stdin.attached"

// containerStdin makes the stdin FIFO of a container created with stdin
// and opens the container's (read) end; nil otherwise. The shim keeps a
// writer open, so the container waits for input rather than reading the
// end of it while no one is attached. With stdinOnce the shim lets go of it
// when the first attach opens StdinAttachedFile: that attach's end of input
// is then the container's.
func containerStdin(dir string, rec *ContainerRecord) (*os.File, error) {
	if !rec.Process.Stdin {
		return nil, nil
	}
	path := filepath.Join(dir, StdinFile)
	if err := mkfifo(path); err != nil {
		return nil, err
	}
	keep, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open stdin: %w", err)
	}
	in, err := os.OpenFile(path, os.O_RDONLY, 0) // does not block: keep is a writer
	if err != nil {
		keep.Close()
		return nil, fmt.Errorf("open stdin: %w", err)
	}
	heldStdin = keep
	if rec.Process.StdinOnce {
		attached := filepath.Join(dir, StdinAttachedFile)
		if err := mkfifo(attached); err != nil {
			in.Close()
			keep.Close()
			return nil, err
		}
		go func() {
			// Opening for reading blocks until the first attach opens it.
			if f, err := os.OpenFile(attached, os.O_RDONLY, 0); err == nil {
				f.Close()
			}
			keep.Close()
		}()
	}
	return in, nil
}

// heldStdin is the shim's writer of its container's stdin, referenced so it
// is never closed by the garbage collector.
var heldStdin *os.File

func mkfifo(path string) error {
	if err := syscall.Mkfifo(path, 0o600); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create %s: %w", filepath.Base(path), err)
	}
	return nil
}
