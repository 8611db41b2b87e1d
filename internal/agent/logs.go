package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/skiff-sh/skiff/internal/runtime/shim"
)

// logOptions are the kubelet's container log options.
type logOptions struct {
	follow     bool
	timestamps bool
	tail       int64 // -1: all
	since      time.Time
	limitBytes int64 // 0: no limit
}

// writeLogs copies a CRI log file to w as `kubectl logs` shows it. With
// follow it keeps reading until running reports false and the file is drained,
// or ctx ends.
func writeLogs(ctx context.Context, path string, o logOptions, w io.Writer, running func() bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	var lines [][]byte
	written := int64(0)
	emit := func(b []byte) error {
		if o.limitBytes > 0 {
			if written >= o.limitBytes {
				return io.EOF
			}
			if rest := o.limitBytes - written; int64(len(b)) > rest {
				b = b[:rest]
			}
		}
		n, err := w.Write(b)
		written += int64(n)
		if fl, ok := w.(interface{ Flush() }); ok {
			fl.Flush()
		}
		return err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	var pending []byte // text of partial lines waiting for their end
	format := func(l shim.LogEntry) []byte {
		text := append(pending, l.Text...)
		pending = nil
		var b []byte
		if o.timestamps {
			b = append(b, l.Time.Format(time.RFC3339Nano)...)
			b = append(b, ' ')
		}
		b = append(b, text...)
		b = append(b, '\n')
		return b
	}
	// readLine returns the next complete formatted line, or nil at EOF.
	var carry []byte
	readLine := func() ([]byte, error) {
		for {
			chunk, err := r.ReadBytes('\n')
			if len(chunk) > 0 && chunk[len(chunk)-1] != '\n' {
				// A line being written: keep it for the next read.
				carry = append(carry, chunk...)
				return nil, io.EOF
			}
			if err != nil {
				return nil, err
			}
			line := append(carry, bytes.TrimSuffix(chunk, []byte{'\n'})...)
			carry = nil
			l, err := shim.ParseLogEntry(line)
			if err != nil || l.Time.Before(o.since) {
				continue // malformed, or older than since
			}
			if l.Partial {
				pending = append(pending, l.Text...)
				continue
			}
			return format(l), nil
		}
	}
	// The existing content, honouring tail.
	for {
		b, err := readLine()
		if err != nil {
			break
		}
		if o.tail >= 0 {
			lines = append(lines, b)
			if int64(len(lines)) > o.tail {
				lines = lines[1:]
			}
			continue
		}
		if err := emit(b); err != nil {
			return nil
		}
	}
	for _, b := range lines {
		if err := emit(b); err != nil {
			return nil
		}
	}
	if !o.follow {
		return nil
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		b, err := readLine()
		if err == nil {
			if err := emit(b); err != nil {
				return nil
			}
			continue
		}
		if !running() {
			// Drain what the container wrote before it exited, then stop.
			for {
				b, err := readLine()
				if err != nil {
					return nil
				}
				if emit(b) != nil {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
