// Package process is skiff's built-in container runtime. It implements the
// CRI RuntimeService and ImageManagerService interfaces in process: a pod
// sandbox is a directory, a container is a host process started by a shim in
// its own session (and, as root, its own cgroup and mount namespace), and
// pods share the node's network. Images are not pulled: a container runs its
// command on the host filesystem.
//
// All state lives in files under Options.RootDir, and each container is
// owned by a detached shim process, so containers keep running when the
// agent stops, and a new Runtime on the same RootDir adopts them.
package process

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	cri "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/runtime/shim"
)

const (
	runtimeName       = "process"
	runtimeVersion    = "0.1.0"
	runtimeAPIVersion = "v1"

	// pollInterval paces waits on things that give no notification: another
	// process's exit, files written by a shim, a cgroup emptying. The shim
	// waits at the same pace.
	pollInterval = shim.PollInterval
)

var (
	_ cri.RuntimeService      = (*Runtime)(nil)
	_ cri.ImageManagerService = (*Runtime)(nil)
)

// Options configure a Runtime.
type Options struct {
	// RootDir holds all runtime state, e.g. <agent-root>/runtime.
	RootDir string
	// NodeIP is reported as every sandbox's IP: pods share the node's
	// network on this runtime.
	NodeIP string
	// ShimCommand starts the shim; the runtime appends the shim's mode and
	// arguments. Default: {os.Executable(), "shim"}, i.e. `skiff shim`,
	// whose handler must call shim.ShimMain.
	ShimCommand []string
}

// Runtime is the process runtime. It is safe for concurrent use.
type Runtime struct {
	root        string
	nodeIP      string
	shimCommand []string
	cgroups     *shim.CgroupLayout // nil without root or without usable cgroups

	mu         sync.Mutex
	sandboxes  map[string]*sandbox
	containers map[string]*container
	pulled     map[string]bool

	streams streamServer // see stream.go
}

// New opens (or creates) the runtime state in opts.RootDir and adopts every
// sandbox and container recorded there.
func New(opts Options) (*Runtime, error) {
	if opts.RootDir == "" {
		return nil, errors.New("process runtime: a root directory is required")
	}
	root, err := filepath.Abs(opts.RootDir)
	if err != nil {
		return nil, fmt.Errorf("process runtime: root directory: %w", err)
	}
	shimCmd := opts.ShimCommand
	if len(shimCmd) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("process runtime: find the skiff binary for the shim: %w", err)
		}
		shimCmd = []string{exe, "shim"}
	}
	r := &Runtime{
		root:        root,
		nodeIP:      opts.NodeIP,
		shimCommand: shimCmd,
		sandboxes:   map[string]*sandbox{},
		containers:  map[string]*container{},
		pulled:      map[string]bool{},
	}
	for _, d := range []string{shim.SandboxesDir, shim.ContainersDir} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o711); err != nil {
			return nil, fmt.Errorf("process runtime: create state directory: %w", err)
		}
	}
	if os.Geteuid() == 0 {
		if r.cgroups, err = shim.DetectCgroups(shim.CgroupRoot); err != nil {
			// Pods still run, as they do without root, only without limits.
			slog.Warn("process runtime: containers will run without cgroups", "err", err)
		}
	}
	if err := r.load(); err != nil {
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	return r, nil
}

// load adopts the sandboxes and containers recorded under the root. A
// directory without a readable record (the agent died while creating it) is
// skipped with a warning; Reset removes it.
func (r *Runtime) load() error {
	dirs, err := os.ReadDir(filepath.Join(r.root, shim.SandboxesDir))
	if err != nil {
		return fmt.Errorf("list sandboxes: %w", err)
	}
	for _, d := range dirs {
		dir := filepath.Join(r.root, shim.SandboxesDir, d.Name())
		sb, err := loadSandbox(dir)
		if err != nil {
			slog.Warn("process runtime: skipping unreadable sandbox", "dir", dir, "err", err)
			continue
		}
		r.sandboxes[sb.rec.ID] = sb
	}
	dirs, err = os.ReadDir(filepath.Join(r.root, shim.ContainersDir))
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, d := range dirs {
		dir := filepath.Join(r.root, shim.ContainersDir, d.Name())
		c, err := loadContainer(dir)
		if err != nil {
			slog.Warn("process runtime: skipping unreadable container", "dir", dir, "err", err)
			continue
		}
		r.containers[c.rec.ID] = c
	}
	return nil
}

func (r *Runtime) sandboxDir(id string) string { return filepath.Join(r.root, shim.SandboxesDir, id) }
func (r *Runtime) containerDir(id string) string {
	return filepath.Join(r.root, shim.ContainersDir, id)
}

func (r *Runtime) getSandbox(id string) (*sandbox, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sb, ok := r.sandboxes[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "pod sandbox %q not found", id)
	}
	return sb, nil
}

func (r *Runtime) getContainer(id string) (*container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "container %q not found", id)
	}
	return c, nil
}

// Version implements cri.RuntimeVersioner.
func (r *Runtime) Version(context.Context, string) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           runtimeVersion,
		RuntimeName:       runtimeName,
		RuntimeVersion:    runtimeVersion,
		RuntimeApiVersion: runtimeAPIVersion,
	}, nil
}

// Status reports the runtime and its (host) network as ready.
func (r *Runtime) Status(context.Context, bool) (*runtimeapi.StatusResponse, error) {
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
		{Type: runtimeapi.NetworkReady, Status: true},
	}}}, nil
}

// UpdateRuntimeConfig accepts the pod CIDR and ignores it: pods use the
// node's network.
func (r *Runtime) UpdateRuntimeConfig(context.Context, *runtimeapi.RuntimeConfig) error { return nil }

// RuntimeConfig reports cgroupfs: the runtime writes cgroup files itself.
func (r *Runtime) RuntimeConfig(context.Context) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{
		CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS}}, nil
}

// Close stops only the streaming server: containers outlive the Runtime.
func (r *Runtime) Close(context.Context) error {
	r.stopStreaming()
	return nil
}

func unsupported(what string) error {
	return status.Errorf(codes.Unimplemented, "%s is not supported by the process runtime", what)
}

// Exec, Attach and PortForward are in stream.go.

// CheckpointContainer is not supported.
func (r *Runtime) CheckpointContainer(context.Context, *runtimeapi.CheckpointContainerRequest) error {
	return unsupported("checkpoint")
}

// CheckpointPod is not supported.
func (r *Runtime) CheckpointPod(context.Context, *runtimeapi.CheckpointPodRequest) error {
	return unsupported("pod checkpoint")
}

// RestorePod is not supported.
func (r *Runtime) RestorePod(context.Context, *runtimeapi.RestorePodRequest) (*runtimeapi.RestorePodResponse, error) {
	return nil, unsupported("pod restore")
}

// GetContainerEvents is not supported: the agent polls (generic PLEG).
func (r *Runtime) GetContainerEvents(context.Context, chan *runtimeapi.ContainerEventResponse, func(runtimeapi.RuntimeService_GetContainerEventsClient)) error {
	return unsupported("container events")
}

// UpdatePodSandboxResources is accepted and ignored: sandboxes have no
// cgroup limits of their own on this runtime.
func (r *Runtime) UpdatePodSandboxResources(context.Context, *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}

var protoJSON = protojson.UnmarshalOptions{DiscardUnknown: true}

func matchLabels(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func newID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate id: %w", err)
	}
	return hex.EncodeToString(b), nil
}
