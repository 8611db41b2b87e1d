package process

import (
	"context"
	"fmt"
	"maps"
	"os"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/runtime/shim"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat; Linux fixes it
// at 100 for user space on every architecture.
const userHZ = 100

// ContainerStats reports CPU and memory use: from the container's cgroup
// when it has one (root), otherwise summed over the processes of its
// process group from /proc (CPU time including reaped children, resident
// memory as the working set). A container that is not running reports
// zeros.
func (r *Runtime) ContainerStats(ctx context.Context, id string) (*runtimeapi.ContainerStats, error) {
	c, err := r.getContainer(id)
	if err != nil {
		return nil, err
	}
	st, _, err := c.stats()
	if err != nil {
		return nil, fmt.Errorf("container stats %s: %w", id, err)
	}
	return st, nil
}

// ListContainerStats reports the running containers matching filter. One
// whose figures cannot be read (it is exiting) is left out.
func (r *Runtime) ListContainerStats(ctx context.Context, filter *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	var out []*runtimeapi.ContainerStats
	for _, c := range r.sortedContainers() {
		if (filter.GetId() != "" && filter.GetId() != c.rec.ID) ||
			(filter.GetPodSandboxId() != "" && filter.GetPodSandboxId() != c.rec.SandboxID) ||
			!matchLabels(filter.GetLabelSelector(), c.config.GetLabels()) {
			continue
		}
		if st, running, err := c.stats(); err == nil && running {
			out = append(out, st)
		}
	}
	return out, nil
}

// stats reads the container's usage and whether it is running.
func (c *container) stats() (*runtimeapi.ContainerStats, bool, error) {
	o, err := c.observe()
	if err != nil {
		return nil, false, err
	}
	var u shim.CgroupUsage
	running := o.state == runtimeapi.ContainerState_CONTAINER_RUNNING
	if running {
		if c.rec.Cgroup != nil {
			u, err = c.rec.Cgroup.Usage()
		} else {
			u, err = processGroupUsage(o.started.PID)
		}
		if err != nil {
			return nil, running, err
		}
	}
	cfg := c.config
	now := time.Now().UnixNano()
	return &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id:          c.rec.ID,
			Metadata:    proto.CloneOf(cfg.GetMetadata()),
			Labels:      maps.Clone(cfg.GetLabels()),
			Annotations: maps.Clone(cfg.GetAnnotations()),
		},
		Cpu: &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: u.CPUNanos}},
		Memory: &runtimeapi.MemoryUsage{Timestamp: now,
			WorkingSetBytes: &runtimeapi.UInt64Value{Value: u.WorkingSet},
			UsageBytes:      &runtimeapi.UInt64Value{Value: u.Memory}},
	}, running, nil
}

// processGroupUsage sums /proc figures over the processes in group pgid.
func processGroupUsage(pgid int) (shim.CgroupUsage, error) {
	var u shim.CgroupUsage
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return u, fmt.Errorf("list processes: %w", err)
	}
	var ticks, pages uint64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := shim.ProcStatFields(pid)
		if err != nil || f[2] != strconv.Itoa(pgid) { // f[2] is field 5, pgrp
			continue
		}
		for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
			v, _ := strconv.ParseUint(f[i], 10, 64)
			ticks += v
		}
		rss, _ := strconv.ParseUint(f[21], 10, 64) // field 24, rss in pages
		pages += rss
	}
	u.CPUNanos = ticks * (1e9 / userHZ)
	u.Memory = pages * uint64(os.Getpagesize())
	u.WorkingSet = u.Memory
	return u, nil
}

// PodSandboxStats sums the sandbox's running containers.
func (r *Runtime) PodSandboxStats(ctx context.Context, id string) (*runtimeapi.PodSandboxStats, error) {
	sb, err := r.getSandbox(id)
	if err != nil {
		return nil, err
	}
	return r.sandboxStats(sb), nil
}

// ListPodSandboxStats reports the ready sandboxes matching filter.
func (r *Runtime) ListPodSandboxStats(ctx context.Context, filter *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	r.mu.Lock()
	all := make([]*sandbox, 0, len(r.sandboxes))
	for _, sb := range r.sandboxes {
		all = append(all, sb)
	}
	r.mu.Unlock()
	var out []*runtimeapi.PodSandboxStats
	for _, sb := range all {
		if !sb.ready() || (filter.GetId() != "" && filter.GetId() != sb.rec.ID) ||
			!matchLabels(filter.GetLabelSelector(), sb.config.GetLabels()) {
			continue
		}
		out = append(out, r.sandboxStats(sb))
	}
	return out, nil
}

func (r *Runtime) sandboxStats(sb *sandbox) *runtimeapi.PodSandboxStats {
	now := time.Now().UnixNano()
	var cpu, ws, mem uint64
	var containers []*runtimeapi.ContainerStats
	for _, c := range r.containersOf(sb.rec.ID) {
		st, running, err := c.stats()
		if err != nil || !running {
			continue
		}
		containers = append(containers, st)
		cpu += st.Cpu.UsageCoreNanoSeconds.Value
		ws += st.Memory.WorkingSetBytes.Value
		mem += st.Memory.UsageBytes.Value
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id:          sb.rec.ID,
			Metadata:    proto.CloneOf(sb.config.GetMetadata()),
			Labels:      maps.Clone(sb.config.GetLabels()),
			Annotations: maps.Clone(sb.config.GetAnnotations()),
		},
		Linux: &runtimeapi.LinuxPodSandboxStats{
			Cpu: &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpu}},
			Memory: &runtimeapi.MemoryUsage{Timestamp: now,
				WorkingSetBytes: &runtimeapi.UInt64Value{Value: ws},
				UsageBytes:      &runtimeapi.UInt64Value{Value: mem}},
			Containers: containers,
		},
	}
}

// ListMetricDescriptors reports no metrics: the agent uses the stats calls.
func (r *Runtime) ListMetricDescriptors(context.Context) ([]*runtimeapi.MetricDescriptor, error) {
	return nil, nil
}

// ListPodSandboxMetrics reports no metrics: the agent uses the stats calls.
func (r *Runtime) ListPodSandboxMetrics(context.Context) ([]*runtimeapi.PodSandboxMetrics, error) {
	return nil, nil
}
