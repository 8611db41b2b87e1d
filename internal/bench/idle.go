package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// IdleOptions configure `skiff bench idle`.
type IdleOptions struct {
	Duration time.Duration
	JSON     bool
}

// IdleResult is what `skiff bench idle --json` prints.
type IdleResult struct {
	// ReadyS runs from starting `skiff server` until its node is seen Ready.
	ReadyS float64 `json:"ready_s"`
	// ServerRSSMB is the server's resident memory at the end of the idle period.
	ServerRSSMB float64 `json:"server_rss_mb"`
	// CPUMillicores is the server's CPU time over the idle period per second.
	CPUMillicores float64 `json:"cpu_millicores"`
	IdleS         float64 `json:"idle_s"`
}

// RunIdle starts a fresh `skiff server` with its agent and no workloads,
// and measures its start, memory and CPU while idle.
func RunIdle(ctx context.Context, o IdleOptions, out io.Writer) (*IdleResult, error) {
	c, err := startCluster(ctx, true)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	res := &IdleResult{ReadyS: c.ready.Sub(c.started).Seconds(), IdleS: o.Duration.Seconds()}
	pid := c.server.Process.Pid
	if res.CPUMillicores, err = millicores(ctx, pid, o.Duration); err != nil {
		return nil, err
	}
	res.ServerRSSMB = procMB(pid, "VmRSS")
	if o.JSON {
		return res, json.NewEncoder(out).Encode(res)
	}
	fmt.Fprintf(out, "%-15s %10s\n%-15s %10.2f\n%-15s %10.1f\n%-15s %10.1f\n", "METRIC", "VALUE",
		"ready_s", res.ReadyS, "server_rss_mb", res.ServerRSSMB, "cpu_millicores", res.CPUMillicores)
	return res, nil
}

// millicores is a process's CPU time per second over the next d.
func millicores(ctx context.Context, pid int, d time.Duration) (float64, error) {
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(d):
	}
	cpu1, err := cpuSeconds(pid)
	if err != nil {
		return 0, err
	}
	return (cpu1 - cpu0) / time.Since(t0).Seconds() * 1000, nil
}

// cpuSeconds is the user+system CPU time of a process and its reaped
// children, from /proc/<pid>/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var ticks float64
	for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime (fields 14-17)
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return 0, err
		}
		ticks += v
	}
	return ticks / 100, nil // USER_HZ is 100 on Linux
}
