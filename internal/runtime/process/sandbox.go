package process

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/runtime/shim"
)

// sandbox is a pod: a directory holding its record (and, when the agent
// gives no log directory, its containers' logs). It has no processes of its
// own; its containers share the node's network.
type sandbox struct {
	dir    string
	config *runtimeapi.PodSandboxConfig // immutable

	// ops serialises the changes of the sandbox's life: creating a
	// container in it, stopping it, removing it.
	ops sync.Mutex

	mu      sync.Mutex // guards rec.Ready and removed
	rec     shim.SandboxRecord
	removed bool
}

func loadSandbox(dir string) (*sandbox, error) {
	sb := &sandbox{dir: dir, config: &runtimeapi.PodSandboxConfig{}}
	if err := shim.ReadJSON(filepath.Join(dir, shim.SandboxFile), &sb.rec); err != nil {
		return nil, err
	}
	if err := protoJSON.Unmarshal(sb.rec.Config, sb.config); err != nil {
		return nil, fmt.Errorf("decode sandbox config: %w", err)
	}
	return sb, nil
}

func (sb *sandbox) ready() bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.rec.Ready && !sb.removed
}

func (sb *sandbox) state() runtimeapi.PodSandboxState {
	if sb.ready() {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

// logDirectory is where the sandbox's container logs go: the agent's choice,
// else a directory inside the sandbox so that output is never dropped.
func (sb *sandbox) logDirectory() string {
	if d := sb.config.GetLogDirectory(); d != "" {
		return d
	}
	return filepath.Join(sb.dir, "logs")
}

// RunPodSandbox records a new, ready sandbox.
func (r *Runtime) RunPodSandbox(ctx context.Context, config *runtimeapi.PodSandboxConfig, runtimeHandler string) (string, error) {
	if config.GetMetadata() == nil {
		return "", status.Error(codes.InvalidArgument, "run pod sandbox: the config has no metadata")
	}
	id, err := newID()
	if err != nil {
		return "", fmt.Errorf("run pod sandbox: %w", err)
	}
	raw, err := protojson.Marshal(config)
	if err != nil {
		return "", fmt.Errorf("run pod sandbox: encode config: %w", err)
	}
	sb := &sandbox{
		dir:    r.sandboxDir(id),
		config: proto.CloneOf(config),
		rec: shim.SandboxRecord{ID: id, CreatedAt: time.Now().UnixNano(), Ready: true,
			RuntimeHandler: runtimeHandler, Config: raw},
	}
	if err := os.Mkdir(sb.dir, 0o711); err != nil {
		return "", fmt.Errorf("run pod sandbox: %w", err)
	}
	if err := shim.WriteJSON(filepath.Join(sb.dir, shim.SandboxFile), sb.rec); err != nil {
		os.RemoveAll(sb.dir)
		return "", fmt.Errorf("run pod sandbox: %w", err)
	}
	r.mu.Lock()
	r.sandboxes[id] = sb
	r.mu.Unlock()
	return id, nil
}

// StopPodSandbox kills the sandbox's containers at once (the agent has
// already given them their grace period) and marks it not ready. Stopping
// a stopped sandbox is a no-op.
func (r *Runtime) StopPodSandbox(ctx context.Context, id string) error {
	sb, err := r.getSandbox(id)
	if err != nil {
		return err
	}
	sb.ops.Lock()
	defer sb.ops.Unlock()
	var errs []error
	for _, c := range r.containersOf(id) {
		errs = append(errs, r.stopContainer(ctx, c, 0))
	}
	sb.mu.Lock()
	if sb.rec.Ready && !sb.removed {
		rec := sb.rec
		rec.Ready = false
		if err := shim.WriteJSON(filepath.Join(sb.dir, shim.SandboxFile), rec); err != nil {
			errs = append(errs, err)
		} else {
			sb.rec = rec
		}
	}
	sb.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop pod sandbox %s: %w", id, err)
	}
	return nil
}

// RemovePodSandbox kills and removes the sandbox's containers, then the
// sandbox. Removing an unknown sandbox succeeds: it is already gone.
func (r *Runtime) RemovePodSandbox(ctx context.Context, id string) error {
	sb, err := r.getSandbox(id)
	if status.Code(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	sb.ops.Lock()
	defer sb.ops.Unlock()
	for _, c := range r.containersOf(id) {
		if err := r.removeContainer(ctx, c); err != nil {
			return fmt.Errorf("remove pod sandbox %s: %w", id, err)
		}
	}
	if r.cgroups != nil {
		// Removed here, not with the last container, so that a container
		// starting in the sandbox never finds its parent cgroup vanishing.
		for _, d := range r.cgroups.SandboxDirs(id) {
			if err := shim.RmdirRetry(d, time.Now().Add(shim.CleanupTimeout)); err != nil {
				return fmt.Errorf("remove pod sandbox %s: %w", id, err)
			}
		}
	}
	if err := os.RemoveAll(sb.dir); err != nil {
		return fmt.Errorf("remove pod sandbox %s: %w", id, err)
	}
	sb.mu.Lock()
	sb.removed = true
	sb.mu.Unlock()
	r.mu.Lock()
	delete(r.sandboxes, id)
	r.mu.Unlock()
	return nil
}

// PodSandboxStatus reports the sandbox with the node's IP as its own.
func (r *Runtime) PodSandboxStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := r.getSandbox(id)
	if err != nil {
		return nil, err
	}
	cfg := sb.config
	st := &runtimeapi.PodSandboxStatus{
		Id:        id,
		Metadata:  proto.CloneOf(cfg.GetMetadata()),
		State:     sb.state(),
		CreatedAt: sb.rec.CreatedAt,
		Network:   &runtimeapi.PodSandboxNetworkStatus{Ip: r.nodeIP},
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: proto.CloneOf(cfg.GetLinux().GetSecurityContext().GetNamespaceOptions())}},
		Labels:         maps.Clone(cfg.GetLabels()),
		Annotations:    maps.Clone(cfg.GetAnnotations()),
		RuntimeHandler: sb.rec.RuntimeHandler,
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: st, Timestamp: time.Now().UnixNano()}, nil
}

// ListPodSandbox lists sandboxes matching filter (all when nil), oldest
// first.
func (r *Runtime) ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	r.mu.Lock()
	all := slices.Collect(maps.Values(r.sandboxes))
	r.mu.Unlock()
	slices.SortFunc(all, func(a, b *sandbox) int { return cmp.Compare(a.rec.CreatedAt, b.rec.CreatedAt) })
	var out []*runtimeapi.PodSandbox
	for _, sb := range all {
		cfg := sb.config
		state := sb.state()
		if id := filter.GetId(); id != "" && id != sb.rec.ID {
			continue
		}
		if filter.GetState() != nil && filter.GetState().GetState() != state {
			continue
		}
		if !matchLabels(filter.GetLabelSelector(), cfg.GetLabels()) {
			continue
		}
		out = append(out, &runtimeapi.PodSandbox{
			Id:             sb.rec.ID,
			Metadata:       proto.CloneOf(cfg.GetMetadata()),
			State:          state,
			CreatedAt:      sb.rec.CreatedAt,
			Labels:         maps.Clone(cfg.GetLabels()),
			Annotations:    maps.Clone(cfg.GetAnnotations()),
			RuntimeHandler: sb.rec.RuntimeHandler,
		})
	}
	return out, nil
}

// containersOf lists the sandbox's containers.
func (r *Runtime) containersOf(sandboxID string) []*container {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*container
	for _, c := range r.containers {
		if c.rec.SandboxID == sandboxID {
			out = append(out, c)
		}
	}
	return out
}
