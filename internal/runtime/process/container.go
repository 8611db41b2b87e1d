package process

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/runtime/shim"
)

// defaultPath is the PATH a container gets when its config sets none; an
// image would normally provide one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// container is one container's record. Its state is not kept in memory: the
// shim writes it to files, which observe reads. Only what those files can no
// longer change is remembered: the started record once it names a process,
// and the exit record once written (each is written once per container).
type container struct {
	dir    string
	rec    shim.ContainerRecord        // immutable
	config *runtimeapi.ContainerConfig // immutable

	ops     sync.Mutex // serialises start, stop and remove
	removed bool       // guarded by ops

	mu    sync.Mutex
	final observed // guarded by mu: the started record once PID != 0; all of it once exited
}

func loadContainer(dir string) (*container, error) {
	c := &container{dir: dir, config: &runtimeapi.ContainerConfig{}}
	if err := shim.ReadJSON(filepath.Join(dir, shim.ContainerFile), &c.rec); err != nil {
		return nil, err
	}
	if err := protoJSON.Unmarshal(c.rec.Config, c.config); err != nil {
		return nil, fmt.Errorf("decode container config: %w", err)
	}
	return c, nil
}

// observed is a container's state as its files tell it.
type observed struct {
	state   runtimeapi.ContainerState
	started shim.StartedRecord // zero until the process ran
	exit    shim.ExitRecord    // zero until it exited
}

func (c *container) observe() (observed, error) {
	c.mu.Lock()
	final := c.final
	c.mu.Unlock()
	if final.state == runtimeapi.ContainerState_CONTAINER_EXITED {
		return final, nil
	}
	o, err := c.read(final.started)
	if err == nil && (o.state == runtimeapi.ContainerState_CONTAINER_EXITED || o.started.PID != 0) {
		c.mu.Lock()
		// A concurrent observe may have seen the exit already: keep that.
		if c.final.state != runtimeapi.ContainerState_CONTAINER_EXITED {
			c.final = o
			if o.state != runtimeapi.ContainerState_CONTAINER_EXITED {
				c.final.state = runtimeapi.ContainerState_CONTAINER_CREATED // only the started record is final yet
			}
		}
		c.mu.Unlock()
	}
	return o, err
}

// read reads the container's state from its files; started, when it names a
// process, is the started record already read.
func (c *container) read(started shim.StartedRecord) (observed, error) {
	o := observed{state: runtimeapi.ContainerState_CONTAINER_CREATED, started: started}
	exitPath := filepath.Join(c.dir, shim.ExitFile)
	if o.started.PID == 0 {
		if _, err := shim.ReadOptionalJSON(filepath.Join(c.dir, shim.StartedFile), &o.started); err != nil {
			return o, err
		}
	}
	if ok, err := shim.ReadOptionalJSON(exitPath, &o.exit); ok || err != nil {
		o.state = runtimeapi.ContainerState_CONTAINER_EXITED
		return o, err
	}
	if o.started.PID == 0 {
		return o, nil
	}
	o.state = runtimeapi.ContainerState_CONTAINER_RUNNING
	if o.started.Alive() {
		return o, nil
	}
	// The process is gone. The shim records the exit once it has drained the
	// output, so the container counts as running until then, unless the
	// shim itself is gone and never will.
	if ok, err := shim.ReadOptionalJSON(exitPath, &o.exit); ok || err != nil {
		o.state = runtimeapi.ContainerState_CONTAINER_EXITED
		return o, err
	}
	var shimProc shim.ProcRef
	if _, err := shim.ReadOptionalJSON(filepath.Join(c.dir, shim.ShimFile), &shimProc); err != nil {
		return o, err
	}
	if shimProc.Alive() {
		return o, nil
	}
	lost := shim.ExitRecord{ExitCode: 255, Reason: "Unknown",
		Message: "the shim exited without recording the container's exit", FinishedAt: time.Now().UnixNano()}
	if _, err := shim.CreateJSON(exitPath, lost); err != nil {
		return o, err
	}
	_, err := shim.ReadOptionalJSON(exitPath, &o.exit)
	o.state = runtimeapi.ContainerState_CONTAINER_EXITED
	return o, err
}

// CreateContainer records a container in a ready sandbox. The process
// runtime has no images, so the container must bring its own command.
func (r *Runtime) CreateContainer(ctx context.Context, sandboxID string, config *runtimeapi.ContainerConfig, sandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	md := config.GetMetadata()
	if md == nil {
		return "", status.Error(codes.InvalidArgument, "create container: the config has no metadata")
	}
	image := config.GetImage().GetImage()
	if len(config.GetCommand())+len(config.GetArgs()) == 0 {
		return "", status.Errorf(codes.InvalidArgument,
			"the process runtime cannot run image %s: the container has no command", image)
	}
	sb, err := r.getSandbox(sandboxID)
	if err != nil {
		return "", err
	}
	sb.ops.Lock() // so RemovePodSandbox cannot miss a container created meanwhile
	defer sb.ops.Unlock()
	if !sb.ready() {
		return "", status.Errorf(codes.FailedPrecondition, "create container %s: pod sandbox %s is not ready", md.GetName(), sandboxID)
	}
	proc, err := processFor(config)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", md.GetName(), err)
	}
	// As containerd does, the container sees its pod's hostname in HOSTNAME
	// (the process runtime has no UTS namespace to give it otherwise).
	if h := cmp.Or(sb.config.GetHostname(), sandboxConfig.GetHostname()); h != "" && shim.EnvValue(proc.Env, "HOSTNAME") == "" {
		proc.Env = append(proc.Env, "HOSTNAME="+h)
	}
	id, err := newID()
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", md.GetName(), err)
	}
	logDir := sandboxConfig.GetLogDirectory()
	if logDir == "" {
		logDir = sb.logDirectory()
	}
	logPath := config.GetLogPath()
	if logPath == "" {
		logPath = fmt.Sprintf("%s_%d.log", md.GetName(), md.GetAttempt())
	}
	raw, err := protojson.Marshal(config)
	if err != nil {
		return "", fmt.Errorf("create container %s: encode config: %w", md.GetName(), err)
	}
	c := &container{
		dir:    r.containerDir(id),
		config: proto.CloneOf(config),
		rec: shim.ContainerRecord{
			ID:          id,
			SandboxID:   sandboxID,
			CreatedAt:   time.Now().UnixNano(),
			Image:       image,
			LogPath:     filepath.Join(logDir, logPath),
			ShimCommand: r.shimCommand,
			Process:     proc,
			Config:      raw,
		},
	}
	if r.cgroups != nil {
		res := config.GetLinux().GetResources()
		c.rec.Cgroup = r.cgroups.ForContainer(sandboxID, id,
			res.GetMemoryLimitInBytes(), res.GetCpuQuota(), res.GetCpuPeriod(), res.GetCpuShares())
	}
	if err := os.Mkdir(c.dir, 0o711); err != nil {
		return "", fmt.Errorf("create container %s: %w", md.GetName(), err)
	}
	if err := shim.WriteJSON(filepath.Join(c.dir, shim.ContainerFile), c.rec); err != nil {
		os.RemoveAll(c.dir)
		return "", fmt.Errorf("create container %s: %w", md.GetName(), err)
	}
	r.mu.Lock()
	r.containers[id] = c
	r.mu.Unlock()
	return id, nil
}

// processFor derives what the shim runs from a CRI container config.
func processFor(config *runtimeapi.ContainerConfig) (shim.ProcessSpec, error) {
	p := shim.ProcessSpec{
		Args:      append(slices.Clone(config.GetCommand()), config.GetArgs()...),
		Cwd:       cmp.Or(config.GetWorkingDir(), "/"),
		Stdin:     config.GetStdin(),
		StdinOnce: config.GetStdinOnce(),
	}
	for _, kv := range config.GetEnvs() {
		p.Env = append(p.Env, kv.GetKey()+"="+string(kv.GetValue()))
	}
	for _, m := range config.GetMounts() {
		p.Mounts = append(p.Mounts, shim.MountSpec{Source: m.GetHostPath(), Destination: m.GetContainerPath(),
			ReadOnly: m.GetReadonly() || m.GetRecursiveReadOnly()})
	}
	u, home, err := userFor(config.GetLinux().GetSecurityContext())
	if err != nil {
		return p, err
	}
	p.User = u
	if shim.EnvValue(p.Env, "PATH") == "" {
		p.Env = append(p.Env, "PATH="+defaultPath)
	}
	if shim.EnvValue(p.Env, "HOME") == "" {
		p.Env = append(p.Env, "HOME="+home)
	}
	return p, nil
}

// userFor resolves the security context's user against the host's
// /etc/passwd and /etc/group, which stand in for the image's. A nil user
// means the agent's own.
func userFor(sc *runtimeapi.LinuxContainerSecurityContext) (*shim.UserSpec, string, error) {
	var (
		u   *user.User
		err error
	)
	switch {
	case sc.GetRunAsUser() != nil:
		u, err = user.LookupId(strconv.FormatInt(sc.GetRunAsUser().GetValue(), 10))
		if err != nil {
			// A numeric uid need not exist in /etc/passwd.
			u = &user.User{Uid: strconv.FormatInt(sc.GetRunAsUser().GetValue(), 10), Gid: strconv.Itoa(os.Getgid()), HomeDir: "/"}
		}
	case sc.GetRunAsUsername() != "":
		if u, err = user.Lookup(sc.GetRunAsUsername()); err != nil {
			return nil, "", fmt.Errorf("run as user %q: %w", sc.GetRunAsUsername(), err)
		}
	case sc.GetRunAsGroup() != nil:
		u = &user.User{Uid: strconv.Itoa(os.Getuid()), Gid: strconv.Itoa(os.Getgid()), HomeDir: "/"}
	default:
		home := "/"
		if cur, err := user.Current(); err == nil && cur.HomeDir != "" {
			home = cur.HomeDir
		}
		return nil, home, nil
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, "", fmt.Errorf("run as user %s: %w", u.Uid, err)
	}
	spec := &shim.UserSpec{UID: uint32(uid), GID: uint32(gid)}
	if sc.GetRunAsGroup() != nil {
		spec.GID = uint32(sc.GetRunAsGroup().GetValue())
	}
	if sc.GetSupplementalGroupsPolicy() != runtimeapi.SupplementalGroupsPolicy_Strict && u.Username != "" {
		if ids, err := u.GroupIds(); err == nil {
			for _, id := range ids {
				if g, err := strconv.ParseUint(id, 10, 32); err == nil {
					spec.Groups = append(spec.Groups, uint32(g))
				}
			}
		}
	}
	for _, g := range sc.GetSupplementalGroups() {
		spec.Groups = append(spec.Groups, uint32(g))
	}
	slices.Sort(spec.Groups)
	spec.Groups = slices.Compact(spec.Groups)
	return spec, cmp.Or(u.HomeDir, "/"), nil
}

// StartContainer starts the container's shim and returns once the container
// process runs, or with the reason it could not start (the container is
// then EXITED with reason StartError).
func (r *Runtime) StartContainer(ctx context.Context, id string) error {
	c, err := r.getContainer(id)
	if err != nil {
		return err
	}
	c.ops.Lock()
	defer c.ops.Unlock()
	if c.removed {
		return status.Errorf(codes.NotFound, "container %q not found", id)
	}
	o, err := c.observe()
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	if o.state != runtimeapi.ContainerState_CONTAINER_CREATED {
		return status.Errorf(codes.FailedPrecondition, "start container %s: it is %s, not created", id, o.state)
	}
	if sb, err := r.getSandbox(c.rec.SandboxID); err != nil || !sb.ready() {
		return status.Errorf(codes.FailedPrecondition, "start container %s: pod sandbox %s is not ready", id, c.rec.SandboxID)
	}
	if err := r.launchShim(ctx, c); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	return nil
}

// launchShim starts `shim start` and reads the shim's verdict from a pipe.
func (r *Runtime) launchShim(ctx context.Context, c *container) error {
	logPath := filepath.Join(c.dir, shim.ShimLogFile)
	shimLog, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open shim log: %w", err)
	}
	defer shimLog.Close()
	verdict, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("create pipe: %w", err)
	}
	defer verdict.Close()
	argv := append(slices.Clone(r.shimCommand), "start", c.dir)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/" // do not pin the agent's working directory
	cmd.Stdout, cmd.Stderr = shimLog, shimLog
	cmd.ExtraFiles = []*os.File{w}
	// Its own session keeps the signals of the agent's terminal and process
	// group away from the shim, which outlives the agent: when the agent
	// exits, init adopts it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close() // now only the shim holds the write end: EOF means it is done
	if err != nil {
		return fmt.Errorf("launch shim: %w", err)
	}
	reapWhenDone(cmd.Process)
	stop := context.AfterFunc(ctx, func() { verdict.SetReadDeadline(time.Now()) })
	defer stop()
	msg, err := io.ReadAll(verdict)
	if err != nil {
		return fmt.Errorf("wait for shim: %w", errors.Join(err, ctx.Err()))
	}
	switch s := strings.TrimSpace(string(msg)); s {
	case shim.ReadyOK:
		return nil
	case "":
		return fmt.Errorf("the shim exited before starting the container (see %s)", logPath)
	default:
		return errors.New(s)
	}
}

// reapWhenDone reaps the shim, the agent's child until the agent exits,
// once it exits with its container. cmd.Wait would block a thread per
// running container in waitid; a pidfd waits in the poller instead.
func reapWhenDone(p *os.Process) {
	fd, err := unix.PidfdOpen(p.Pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		go func() { _, _ = p.Wait() }() // kernels before 5.10
		return
	}
	pid := p.Pid
	_ = p.Release() // unreaped, the pid cannot be reused meanwhile
	f := os.NewFile(uintptr(fd), "pidfd")
	go func() {
		defer f.Close()
		rc, err := f.SyscallConn()
		if err != nil {
			return
		}
		// Read polls until the pidfd is readable, which it is once the shim exited.
		_ = rc.Read(func(uintptr) bool {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			return got == pid || (err != nil && !errors.Is(err, syscall.EINTR))
		})
	}()
}

// StopContainer signals the container's process group with its stop signal
// (SIGTERM by default), waits up to timeout seconds, then SIGKILLs the
// group and everything in its cgroup. Stopping a stopped container is a
// no-op.
func (r *Runtime) StopContainer(ctx context.Context, id string, timeout int64) error {
	c, err := r.getContainer(id)
	if err != nil {
		return err
	}
	return r.stopContainer(ctx, c, timeout)
}

func (r *Runtime) stopContainer(ctx context.Context, c *container, timeout int64) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	if err := r.stopLocked(ctx, c, timeout); err != nil {
		return fmt.Errorf("stop container %s: %w", c.rec.ID, err)
	}
	return nil
}

func (r *Runtime) stopLocked(ctx context.Context, c *container, timeout int64) error {
	o, err := c.observe()
	if err != nil || o.state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return err
	}
	proc := o.started.ProcRef
	if timeout > 0 {
		if proc.Alive() {
			// The container is a session leader, so its pid is its group.
			_ = syscall.Kill(-proc.PID, stopSignal(c.config))
		}
		exited, err := c.waitExited(ctx, time.Now().Add(time.Duration(timeout)*time.Second))
		if exited || err != nil {
			return err
		}
	}
	if proc.Alive() {
		_ = syscall.Kill(-proc.PID, syscall.SIGKILL)
	}
	if cg := c.rec.Cgroup; cg != nil {
		// Also reaches processes that left the group with setsid.
		if err := cg.Kill(time.Now().Add(shim.CleanupTimeout)); err != nil {
			return err
		}
	}
	exited, err := c.waitExited(ctx, time.Now().Add(shim.CleanupTimeout))
	if err == nil && !exited {
		err = errors.New("the container did not exit after SIGKILL")
	}
	return err
}

// waitExited polls until the container is EXITED, the deadline passes
// (false) or ctx ends.
func (c *container) waitExited(ctx context.Context, deadline time.Time) (bool, error) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		o, err := c.observe()
		if err != nil {
			return false, err
		}
		if o.state == runtimeapi.ContainerState_CONTAINER_EXITED {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-tick.C:
		}
	}
}

// stopSignal is the config's stop signal, SIGTERM by default.
func stopSignal(config *runtimeapi.ContainerConfig) syscall.Signal {
	if s := config.GetStopSignal(); s != runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		if n := unix.SignalNum(strings.TrimPrefix(s.String(), "SIGNAL_")); n != 0 {
			return n
		}
	}
	return syscall.SIGTERM
}

// RemoveContainer kills the container if it still runs and deletes its
// state and log. Removing an unknown container succeeds.
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	c, err := r.getContainer(id)
	if status.Code(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	return r.removeContainer(ctx, c)
}

func (r *Runtime) removeContainer(ctx context.Context, c *container) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	if c.removed {
		return nil
	}
	if err := r.stopLocked(ctx, c, 0); err != nil {
		return fmt.Errorf("remove container %s: %w", c.rec.ID, err)
	}
	var errs []error
	if cg := c.rec.Cgroup; cg != nil {
		// The shim removes the cgroup after the exit; this covers a shim
		// that died first.
		errs = append(errs, cg.Remove(time.Now().Add(shim.CleanupTimeout)))
	}
	if err := os.Remove(c.rec.LogPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	errs = append(errs, os.RemoveAll(c.dir))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove container %s: %w", c.rec.ID, err)
	}
	c.removed = true
	r.mu.Lock()
	delete(r.containers, c.rec.ID)
	r.mu.Unlock()
	return nil
}

// ContainerStatus reports the container's state. With verbose, Info["pid"]
// is the container process's pid on the host.
func (r *Runtime) ContainerStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := r.getContainer(id)
	if err != nil {
		return nil, err
	}
	o, err := c.observe()
	if err != nil {
		return nil, fmt.Errorf("container status %s: %w", id, err)
	}
	cfg := c.config
	st := &runtimeapi.ContainerStatus{
		Id:          id,
		Metadata:    proto.CloneOf(cfg.GetMetadata()),
		State:       o.state,
		CreatedAt:   c.rec.CreatedAt,
		StartedAt:   o.started.StartedAt,
		FinishedAt:  o.exit.FinishedAt,
		ExitCode:    o.exit.ExitCode,
		Image:       proto.CloneOf(cfg.GetImage()),
		ImageRef:    c.rec.Image,
		ImageId:     c.rec.Image,
		Reason:      o.exit.Reason,
		Message:     o.exit.Message,
		Labels:      maps.Clone(cfg.GetLabels()),
		Annotations: maps.Clone(cfg.GetAnnotations()),
		LogPath:     c.rec.LogPath,
		StopSignal:  cfg.GetStopSignal(),
	}
	for _, m := range cfg.GetMounts() {
		st.Mounts = append(st.Mounts, proto.CloneOf(m))
	}
	if res := cfg.GetLinux().GetResources(); res != nil {
		st.Resources = &runtimeapi.ContainerResources{Linux: proto.CloneOf(res)}
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: st}
	if verbose && o.started.PID != 0 {
		resp.Info = map[string]string{"pid": strconv.Itoa(o.started.PID)}
	}
	return resp, nil
}

// ListContainers lists containers matching filter (all when nil), oldest
// first.
func (r *Runtime) ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	var out []*runtimeapi.Container
	for _, c := range r.sortedContainers() {
		cfg := c.config
		if (filter.GetId() != "" && filter.GetId() != c.rec.ID) ||
			(filter.GetPodSandboxId() != "" && filter.GetPodSandboxId() != c.rec.SandboxID) ||
			!matchLabels(filter.GetLabelSelector(), cfg.GetLabels()) {
			continue
		}
		o, err := c.observe()
		if err != nil {
			return nil, fmt.Errorf("list containers: %w", err)
		}
		if filter.GetState() != nil && filter.GetState().GetState() != o.state {
			continue
		}
		out = append(out, &runtimeapi.Container{
			Id:           c.rec.ID,
			PodSandboxId: c.rec.SandboxID,
			Metadata:     proto.CloneOf(cfg.GetMetadata()),
			Image:        proto.CloneOf(cfg.GetImage()),
			ImageRef:     c.rec.Image,
			ImageId:      c.rec.Image,
			State:        o.state,
			CreatedAt:    c.rec.CreatedAt,
			Labels:       maps.Clone(cfg.GetLabels()),
			Annotations:  maps.Clone(cfg.GetAnnotations()),
		})
	}
	return out, nil
}

func (r *Runtime) sortedContainers() []*container {
	r.mu.Lock()
	all := slices.Collect(maps.Values(r.containers))
	r.mu.Unlock()
	slices.SortFunc(all, func(a, b *container) int { return cmp.Compare(a.rec.CreatedAt, b.rec.CreatedAt) })
	return all
}

// UpdateContainerResources applies new memory and CPU limits to a running
// container's cgroup. Without cgroups there is nothing to apply.
func (r *Runtime) UpdateContainerResources(ctx context.Context, id string, resources *runtimeapi.ContainerResources) error {
	c, err := r.getContainer(id)
	if err != nil {
		return err
	}
	if c.rec.Cgroup == nil || resources.GetLinux() == nil {
		return nil
	}
	res := resources.GetLinux()
	cg := *c.rec.Cgroup
	cg.MemoryLimit, cg.CPUQuota, cg.CPUPeriod, cg.CPUShares =
		res.GetMemoryLimitInBytes(), res.GetCpuQuota(), res.GetCpuPeriod(), res.GetCpuShares()
	if err := cg.ApplyLimits(); err != nil {
		return fmt.Errorf("update container resources %s: %w", id, err)
	}
	return nil
}

// ReopenContainerLog asks the shim (with SIGUSR1) to reopen the log file
// after the agent rotated it, and waits until the new file exists.
func (r *Runtime) ReopenContainerLog(ctx context.Context, id string) error {
	c, err := r.getContainer(id)
	if err != nil {
		return err
	}
	o, err := c.observe()
	if err != nil {
		return fmt.Errorf("reopen container log %s: %w", id, err)
	}
	var shimProc shim.ProcRef
	if _, err := shim.ReadOptionalJSON(filepath.Join(c.dir, shim.ShimFile), &shimProc); err != nil {
		return fmt.Errorf("reopen container log %s: %w", id, err)
	}
	if o.state != runtimeapi.ContainerState_CONTAINER_RUNNING || !shimProc.Alive() {
		return status.Errorf(codes.FailedPrecondition, "reopen container log %s: the container is not running", id)
	}
	if err := syscall.Kill(shimProc.PID, syscall.SIGUSR1); err != nil {
		return fmt.Errorf("reopen container log %s: %w", id, err)
	}
	deadline := time.Now().Add(shim.CleanupTimeout)
	for {
		if _, err := os.Stat(c.rec.LogPath); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("reopen container log %s: the shim did not reopen %s", id, c.rec.LogPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}
