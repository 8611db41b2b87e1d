package shim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// maxLogLine is the longest line written as one CRI log entry; longer lines
// are split into partial ("P") entries, as containerd does, so one runaway
// line cannot make a log reader buffer without bound.
const maxLogLine = 16 * 1024

// criLog appends entries in the CRI log format the kubelet parses:
//
//	<RFC3339Nano time> <stdout|stderr> <F|P> <text>
//
// stdout and stderr are copied by separate goroutines into one file; the
// mutex keeps each entry a single whole write.
type criLog struct {
	mu   sync.Mutex
	path string
	f    *os.File
	now  func() time.Time
}

func openCRILog(path string) (*criLog, error) {
	l := &criLog{path: path, now: time.Now}
	if err := l.reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

// reopen starts writing to a fresh file at path; the kubelet renames the
// old file away when it rotates logs, then asks for a reopen.
func (l *criLog) reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open container log: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
	}
	l.f = f
	return nil
}

func (l *criLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// formatEntry formats one log entry; text has no trailing newline.
func formatEntry(t time.Time, stream string, partial bool, text []byte) []byte {
	tag := "F"
	if partial {
		tag = "P"
	}
	b := make([]byte, 0, len(text)+64)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, ' ')
	b = append(b, tag...)
	b = append(b, ' ')
	b = append(b, text...)
	return append(b, '\n')
}

// LogEntry is one entry of a CRI log.
type LogEntry struct {
	Time    time.Time
	Stream  string // "stdout" or "stderr"
	Partial bool   // "P": the line goes on in the next entry
	Text    []byte // without the newline
}

// ParseLogEntry parses one line of a CRI log as formatEntry writes it, with
// or without its newline. Text shares line's memory.
func ParseLogEntry(line []byte) (LogEntry, error) {
	var e LogEntry
	// An empty text may come without the space before it.
	fields := bytes.SplitN(bytes.TrimSuffix(line, []byte{'\n'}), []byte{' '}, 4)
	if len(fields) < 3 {
		return e, errors.New("CRI log line: too few fields")
	}
	t, err := time.Parse(time.RFC3339Nano, string(fields[0]))
	if err != nil {
		return e, fmt.Errorf("CRI log line: time: %w", err)
	}
	e.Time = t
	switch string(fields[1]) { // constants, not a copy per line
	case "stdout":
		e.Stream = "stdout"
	case "stderr":
		e.Stream = "stderr"
	default:
		return e, fmt.Errorf("CRI log line: unknown stream %q", fields[1])
	}
	switch string(fields[2]) {
	case "F":
	case "P":
		e.Partial = true
	default:
		return e, fmt.Errorf("CRI log line: unknown tag %q", fields[2])
	}
	if len(fields) == 4 {
		e.Text = fields[3]
	}
	return e, nil
}

func (l *criLog) write(stream string, partial bool, text []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("container log is closed")
	}
	_, err := l.f.Write(formatEntry(l.now(), stream, partial, text))
	return err
}

// copyStream turns r (a container's stdout or stderr) into log entries
// until EOF. A last line without a newline is written as full: the stream
// has ended, so nothing will complete it.
func (l *criLog) copyStream(stream string, r io.Reader) error {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if werr := l.write(stream, false, line[:len(line)-1]); werr != nil {
				return werr
			}
		case errors.Is(err, bufio.ErrBufferFull):
			if werr := l.write(stream, true, line); werr != nil {
				return werr
			}
		case errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed):
			if len(line) > 0 {
				return l.write(stream, false, line)
			}
			return nil
		default:
			if len(line) > 0 {
				_ = l.write(stream, false, line)
			}
			return fmt.Errorf("read container %s: %w", stream, err)
		}
	}
}
