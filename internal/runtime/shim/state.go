package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Everything the runtime knows lives in files under RootDir, so that a new
// Runtime (after an agent restart) and the shims agree without talking:
//
//	<root>/sandboxes/<id>/sandbox.json     written by the runtime
//	<root>/containers/<id>/container.json  written by the runtime; the shim's spec
//	<root>/containers/<id>/shim.json       written by the shim when it starts
//	<root>/containers/<id>/started.json    written by the shim once the process runs
//	<root>/containers/<id>/exit.json       written by the shim when the process ends
//	<root>/containers/<id>/shim.log        the shim's own diagnostics
//
// Containers live in a flat directory rather than under their sandbox so a
// container ID alone finds its state.
const (
	SandboxesDir  = "sandboxes"
	ContainersDir = "containers"
	SandboxFile   = "sandbox.json"
	ContainerFile = "container.json"
	ShimFile      = "shim.json"
	StartedFile   = "started.json"
	ExitFile      = "exit.json"
	ShimLogFile   = "shim.log"
)

// SandboxRecord is sandbox.json.
type SandboxRecord struct {
	ID             string          `json:"id"`
	CreatedAt      int64           `json:"createdAt"`
	Ready          bool            `json:"ready"`
	RuntimeHandler string          `json:"runtimeHandler,omitempty"`
	Config         json.RawMessage `json:"config"` // protojson PodSandboxConfig
}

// ContainerRecord is container.json. Config is kept only to echo metadata,
// labels and annotations back; the shim reads nothing but the derived fields,
// so it does not need to understand CRI.
type ContainerRecord struct {
	ID          string          `json:"id"`
	SandboxID   string          `json:"sandboxId"`
	CreatedAt   int64           `json:"createdAt"`
	Image       string          `json:"image"`
	LogPath     string          `json:"logPath"`
	ShimCommand []string        `json:"shimCommand"`
	Process     ProcessSpec     `json:"process"`
	Cgroup      *CgroupSpec     `json:"cgroup,omitempty"`
	Config      json.RawMessage `json:"config"` // protojson ContainerConfig
}

// ProcessSpec is what the shim needs to start the container process.
type ProcessSpec struct {
	Args   []string    `json:"args"`
	Env    []string    `json:"env"`
	Cwd    string      `json:"cwd"`
	User   *UserSpec   `json:"user,omitempty"`
	Mounts []MountSpec `json:"mounts,omitempty"`
	Stdin  bool        `json:"stdin,omitempty"` // reads the stdin FIFO (stdin.go)
	// StdinOnce: the first attach's end of input is the container's.
	StdinOnce bool `json:"stdinOnce,omitempty"`
}

// UserSpec is the identity the container process runs as.
type UserSpec struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

// MountSpec is a bind mount of a host path into the container.
type MountSpec struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"readOnly,omitempty"`
}

// ProcRef names a process by pid and kernel start time, so that a recycled
// pid is never mistaken for the process we started.
type ProcRef struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"` // /proc/<pid>/stat starttime, clock ticks since boot
}

// StartedRecord is started.json.
type StartedRecord struct {
	ProcRef
	StartedAt int64 `json:"startedAt"`
}

// ExitRecord is exit.json.
type ExitRecord struct {
	ExitCode   int32  `json:"exitCode"`
	Reason     string `json:"reason"`
	Message    string `json:"message,omitempty"`
	FinishedAt int64  `json:"finishedAt"`
}

// WriteJSON replaces path atomically so readers (the runtime, a restarted
// agent, Reset) never see a half-written file.
func WriteJSON(path string, v any) error {
	tmp, err := marshalTemp(path, v)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// CreateJSON writes path only if it does not exist yet (link fails on an
// existing name), so two writers racing to record an exit cannot overwrite
// each other. It reports whether this call created the file.
func CreateJSON(path string, v any) (bool, error) {
	tmp, err := marshalTemp(path, v)
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}

func marshalTemp(path string, v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return f.Name(), nil
}

// ReadJSON decodes path into v; a missing file is reported with an error
// that matches os.ErrNotExist.
func ReadJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// ReadOptionalJSON is ReadJSON that reports a missing file as (false, nil).
func ReadOptionalJSON(path string, v any) (bool, error) {
	err := ReadJSON(path, v)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// procStat returns a process's start time and whether it is a zombie, from
// /proc/<pid>/stat.
func procStat(pid int) (start uint64, zombie bool, err error) {
	fields, err := ProcStatFields(pid)
	if err != nil {
		return 0, false, err
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return start, fields[0] == "Z", nil
}

// ProcStatFields returns the fields of /proc/<pid>/stat after the command
// name, so fields[0] is the state (field 3 in proc(5)) and fields[n] is
// field n+3.
func ProcStatFields(pid int) ([]string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	// The command name may contain spaces and parentheses; it ends at the
	// last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 22 {
		return nil, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields))
	}
	return fields, nil
}

// selfRef names the calling process.
func selfRef() (ProcRef, error) { return RefOf(os.Getpid()) }

// RefOf names process pid.
func RefOf(pid int) (ProcRef, error) {
	start, _, err := procStat(pid)
	if err != nil {
		return ProcRef{}, err
	}
	return ProcRef{PID: pid, Start: start}, nil
}

// Alive reports whether the referenced process still runs. A zombie counts
// as gone: it has exited and only waits to be reaped.
func (p ProcRef) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	start, zombie, err := procStat(p.PID)
	return err == nil && !zombie && start == p.Start
}
