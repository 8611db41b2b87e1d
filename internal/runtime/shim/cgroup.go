package shim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CgroupRoot is where both cgroup versions are mounted on every mainstream
// distribution; skiff's containers live in a "skiff" subtree under it:
//
//	v2: /sys/fs/cgroup/skiff/<sandbox>/<container>
//	v1: /sys/fs/cgroup/{memory,cpu,cpuacct}/skiff/<sandbox>/<container>
const (
	CgroupRoot   = "/sys/fs/cgroup"
	CgroupParent = "skiff"
	UnifiedKey   = "unified" // the one directory of a v2 cgroup in CgroupSpec.Dirs
)

// V1Controllers are the cgroup v1 hierarchies the runtime uses: memory for
// the limit, OOM events and the process list, cpu for quota and shares,
// cpuacct for CPU usage.
var V1Controllers = []string{"memory", "cpu", "cpuacct"}

// CgroupLayout is what the process runtime's New detected about the
// machine's cgroups.
type CgroupLayout struct {
	v2    bool
	bases map[string]string // UnifiedKey or v1 controller → the "skiff" directory
}

// CgroupSpec is one container's cgroup, stored in container.json so that the
// shim, a restarted runtime and Reset all act on the same directories.
type CgroupSpec struct {
	V2          bool              `json:"v2"`
	Dirs        map[string]string `json:"dirs"` // UnifiedKey or v1 controller → directory
	MemoryLimit int64             `json:"memoryLimit,omitempty"`
	CPUQuota    int64             `json:"cpuQuota,omitempty"`
	CPUPeriod   int64             `json:"cpuPeriod,omitempty"`
	CPUShares   int64             `json:"cpuShares,omitempty"`
}

// DetectCgroups finds a usable hierarchy under root and prepares the skiff
// subtree. v2 is used when root is a cgroup2 mount; otherwise the v1 memory
// controller (and cpu, cpuacct when present) is used.
func DetectCgroups(root string) (*CgroupLayout, error) {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		base := filepath.Join(root, CgroupParent)
		if err := os.MkdirAll(base, 0o755); err != nil {
			return nil, fmt.Errorf("create cgroup %s: %w", base, err)
		}
		// A v2 child only gets controller files when its parent enables them.
		for _, dir := range []string{root, base} {
			if err := enableControllers(dir); err != nil {
				return nil, err
			}
		}
		return &CgroupLayout{v2: true, bases: map[string]string{UnifiedKey: base}}, nil
	}
	if _, err := os.Stat(filepath.Join(root, "memory", "memory.limit_in_bytes")); err != nil {
		return nil, fmt.Errorf("no usable cgroup hierarchy under %s: need cgroup v2 or the v1 memory controller", root)
	}
	l := &CgroupLayout{bases: map[string]string{}}
	for _, c := range V1Controllers {
		if _, err := os.Stat(filepath.Join(root, c, "cgroup.procs")); err != nil {
			continue // optional controller (cpu, cpuacct) not mounted
		}
		base := filepath.Join(root, c, CgroupParent)
		if err := os.MkdirAll(base, 0o755); err != nil {
			return nil, fmt.Errorf("create cgroup %s: %w", base, err)
		}
		l.bases[c] = base
	}
	return l, nil
}

// enableControllers turns on memory and (where the machine offers it) cpu
// for dir's children. Without memory there are no limits and no OOM
// reports, so its absence is an error.
func enableControllers(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("read cgroup controllers of %s: %w", dir, err)
	}
	available := strings.Fields(string(data))
	if !slices.Contains(available, "memory") {
		return fmt.Errorf("cgroup %s does not offer the memory controller", dir)
	}
	p := filepath.Join(dir, "cgroup.subtree_control")
	for _, c := range []string{"memory", "cpu"} {
		if !slices.Contains(available, c) {
			continue
		}
		if err := os.WriteFile(p, []byte("+"+c), 0o644); err != nil {
			return fmt.Errorf("enable cgroup controller %s in %s: %w", c, dir, err)
		}
	}
	return nil
}

// ForContainer describes the cgroup of one container with the limits from
// its CRI resources.
func (l *CgroupLayout) ForContainer(sandboxID, containerID string, memory, quota, period, shares int64) *CgroupSpec {
	s := &CgroupSpec{V2: l.v2, Dirs: map[string]string{},
		MemoryLimit: memory, CPUQuota: quota, CPUPeriod: period, CPUShares: shares}
	for k, base := range l.bases {
		s.Dirs[k] = filepath.Join(base, sandboxID, containerID)
	}
	return s
}

// SandboxDirs are the per-sandbox parents of the container cgroups.
func (l *CgroupLayout) SandboxDirs(sandboxID string) []string {
	var dirs []string
	for _, base := range l.bases {
		dirs = append(dirs, filepath.Join(base, sandboxID))
	}
	return dirs
}

// UniqueDirs lists each directory once: on some machines cpu and cpuacct are one
// hierarchy reached through two symlinks.
func (s *CgroupSpec) UniqueDirs() []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range slices.Sorted(maps.Keys(s.Dirs)) {
		d := s.Dirs[k]
		// d is <root>/<controller>/skiff/<sandbox>/<container>; compare the
		// controller mounts, which exist even before d does.
		mount := filepath.Dir(filepath.Dir(filepath.Dir(d)))
		real, err := filepath.EvalSymlinks(mount)
		if err != nil {
			real = mount
		}
		if !seen[real] {
			seen[real] = true
			out = append(out, d)
		}
	}
	return out
}

// main is the directory whose cgroup.procs and memory files are read.
func (s *CgroupSpec) main() string {
	if s.V2 {
		return s.Dirs[UnifiedKey]
	}
	return s.Dirs["memory"]
}

// Dir is the directory of the given v1 controller (any controller: the one
// directory of a v2 cgroup).
func (s *CgroupSpec) Dir(controller string) string {
	if s.V2 {
		return s.Dirs[UnifiedKey]
	}
	return s.Dirs[controller]
}

// create makes the container's cgroup and applies its limits.
func (s *CgroupSpec) create() error {
	for _, d := range s.UniqueDirs() {
		parent := filepath.Dir(d)
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", parent, err)
		}
		if s.V2 {
			if err := enableControllers(parent); err != nil {
				return err
			}
		}
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", d, err)
		}
	}
	return s.ApplyLimits()
}

// ApplyLimits writes the spec's limits; zero means "not set".
func (s *CgroupSpec) ApplyLimits() error {
	var writes [][2]string // file, value
	period := s.CPUPeriod
	if period <= 0 {
		period = 100000
	}
	if s.V2 {
		d := s.Dir(UnifiedKey)
		if s.MemoryLimit > 0 {
			writes = append(writes, [2]string{filepath.Join(d, "memory.max"), strconv.FormatInt(s.MemoryLimit, 10)})
		}
		if s.CPUQuota > 0 {
			writes = append(writes, [2]string{filepath.Join(d, "cpu.max"), fmt.Sprintf("%d %d", s.CPUQuota, period)})
		}
		if s.CPUShares > 0 {
			writes = append(writes, [2]string{filepath.Join(d, "cpu.weight"), strconv.FormatInt(sharesToWeight(s.CPUShares), 10)})
		}
	} else {
		if d := s.Dir("memory"); d != "" && s.MemoryLimit > 0 {
			writes = append(writes, [2]string{filepath.Join(d, "memory.limit_in_bytes"), strconv.FormatInt(s.MemoryLimit, 10)})
		}
		if d := s.Dir("cpu"); d != "" {
			if s.CPUQuota > 0 {
				// The period first: the kernel checks the quota against it.
				writes = append(writes,
					[2]string{filepath.Join(d, "cpu.cfs_period_us"), strconv.FormatInt(period, 10)},
					[2]string{filepath.Join(d, "cpu.cfs_quota_us"), strconv.FormatInt(s.CPUQuota, 10)})
			}
			if s.CPUShares > 0 {
				writes = append(writes, [2]string{filepath.Join(d, "cpu.shares"), strconv.FormatInt(s.CPUShares, 10)})
			}
		}
	}
	for _, w := range writes {
		if err := os.WriteFile(w[0], []byte(w[1]), 0o644); err != nil {
			return fmt.Errorf("set cgroup limit %s=%s: %w", w[0], w[1], err)
		}
	}
	return nil
}

// sharesToWeight maps cgroup v1 cpu.shares [2, 262144] onto v2 cpu.weight
// [1, 10000], the conversion runc and the kubelet use.
func sharesToWeight(shares int64) int64 {
	shares = max(2, min(shares, 262144))
	return 1 + ((shares-2)*9999)/262142
}

// join moves pid into the container's cgroup in every hierarchy.
func (s *CgroupSpec) join(pid int) error {
	for _, d := range s.UniqueDirs() {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("join cgroup %s: %w", d, err)
		}
	}
	return nil
}

// joinThread moves thread tid (not its whole process) into the container's
// cgroup in every v1 hierarchy (see startInCgroup), and returns how to move
// it back to the cgroups it is in now.
func (s *CgroupSpec) joinThread(tid int) (restore func() error, err error) {
	own, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/cgroup", tid))
	if err != nil {
		return func() error { return nil }, fmt.Errorf("read own cgroups: %w", err)
	}
	// Lines are "id:controller[,controller]:path" (path from the hierarchy's root).
	ownPath := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) == 3 {
			for _, c := range strings.Split(f[1], ",") {
				ownPath[c] = f[2]
			}
		}
	}
	back := map[string]string{} // container cgroup → the thread's own, in the same hierarchy
	for c, d := range s.Dirs {
		p, ok := ownPath[c]
		if !ok {
			return func() error { return nil }, fmt.Errorf("own %s cgroup not found in /proc/self/task/%d/cgroup", c, tid)
		}
		// d is <root>/<controller>/skiff/<sandbox>/<container>.
		back[d] = filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(d))), p)
	}
	var joined []string
	restore = func() error {
		var errs []error
		for _, d := range joined {
			if err := os.WriteFile(filepath.Join(back[d], "tasks"), []byte(strconv.Itoa(tid)), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("leave cgroup %s: %w", d, err))
			}
		}
		return errors.Join(errs...)
	}
	for _, d := range s.UniqueDirs() {
		if err := os.WriteFile(filepath.Join(d, "tasks"), []byte(strconv.Itoa(tid)), 0o644); err != nil {
			return restore, fmt.Errorf("join cgroup %s: %w", d, err)
		}
		joined = append(joined, d)
	}
	return restore, nil
}

// pids lists the processes in the cgroup; a missing cgroup has none. A
// cgroup being removed (by its shim, once the container has exited) answers
// ENODEV while it goes: it has none either.
func (s *CgroupSpec) pids() ([]int, error) {
	data, err := os.ReadFile(filepath.Join(s.main(), "cgroup.procs"))
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENODEV) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list cgroup processes: %w", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Kill SIGKILLs every process in the cgroup and waits until it is empty or
// the deadline passes. Rounds repeat because a process may fork while the
// list is being read.
func (s *CgroupSpec) Kill(deadline time.Time) error {
	if s.V2 {
		// cgroup.kill (Linux 5.14+) kills atomically, forks included.
		_ = os.WriteFile(filepath.Join(s.main(), "cgroup.kill"), []byte("1"), 0o644)
	}
	for {
		pids, err := s.pids()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still has processes %v", s.main(), pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(PollInterval)
	}
}

// Remove deletes the cgroup directories. Right after its last process dies
// the kernel may still report the cgroup busy, so rmdir is retried until the
// deadline.
func (s *CgroupSpec) Remove(deadline time.Time) error {
	var errs []error
	for _, d := range s.UniqueDirs() {
		errs = append(errs, RmdirRetry(d, deadline))
	}
	return errors.Join(errs...)
}

// RmdirRetry removes the (cgroup) directory dir, retrying while the kernel
// reports it busy until the deadline; a directory already gone is no error.
func RmdirRetry(dir string, deadline time.Time) error {
	for {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(PollInterval)
	}
}

// oomKills is the number of processes the kernel's OOM killer has killed in
// the cgroup so far.
func (s *CgroupSpec) oomKills() (uint64, error) {
	file := "memory.oom_control" // v1 lists oom_kill here (Linux 4.13+)
	if s.V2 {
		file = "memory.events"
	}
	kv, err := readKeyValues(filepath.Join(s.Dir("memory"), file))
	if err != nil {
		return 0, err
	}
	return kv["oom_kill"], nil
}

// CgroupUsage is what stats reports from a cgroup.
type CgroupUsage struct {
	CPUNanos   uint64
	Memory     uint64 // total charged memory
	WorkingSet uint64 // memory minus inactive page cache, as the kubelet computes it
}

// Usage reads the cgroup's CPU and memory figures.
func (s *CgroupSpec) Usage() (CgroupUsage, error) {
	var u CgroupUsage
	if s.V2 {
		d := s.Dir(UnifiedKey)
		cpu, err := readKeyValues(filepath.Join(d, "cpu.stat"))
		if err != nil {
			return u, err
		}
		u.CPUNanos = cpu["usage_usec"] * 1000
		if u.Memory, err = readUint(filepath.Join(d, "memory.current")); err != nil {
			return u, err
		}
		mem, err := readKeyValues(filepath.Join(d, "memory.stat"))
		if err != nil {
			return u, err
		}
		u.WorkingSet = u.Memory - min(u.Memory, mem["inactive_file"])
		return u, nil
	}
	if d := s.Dir("cpuacct"); d != "" {
		v, err := readUint(filepath.Join(d, "cpuacct.usage"))
		if err != nil {
			return u, err
		}
		u.CPUNanos = v
	}
	d := s.Dir("memory")
	var err error
	if u.Memory, err = readUint(filepath.Join(d, "memory.usage_in_bytes")); err != nil {
		return u, err
	}
	mem, err := readKeyValues(filepath.Join(d, "memory.stat"))
	if err != nil {
		return u, err
	}
	u.WorkingSet = u.Memory - min(u.Memory, mem["total_inactive_file"])
	return u, nil
}

func readUint(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return v, nil
}

func readKeyValues(path string) (map[string]uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return parseKeyValues(data), nil
}

// parseKeyValues parses the "key value" lines of files such as cpu.stat,
// memory.stat, memory.events and memory.oom_control; lines that do not fit
// are skipped.
func parseKeyValues(data []byte) map[string]uint64 {
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[f[0]] = v
		}
	}
	return out
}
