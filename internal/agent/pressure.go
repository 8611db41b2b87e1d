package agent

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
)

// Upstream's default hard eviction thresholds, which also decide the node's
// pressure conditions: memory.available<100Mi, nodefs.available<10%,
// nodefs.inodesFree<5%; and PIDs, which upstream leaves to the admin, at
// fewer than 10% of pid_max free.
const (
	memoryAvailableMin = 100 << 20
	diskAvailableMin   = 0.10
	inodesFreeMin      = 0.05
	pidsAvailableMin   = 0.10
)

// pressure is the node's state against those thresholds.
type pressure struct {
	memory, disk, pid bool
}

// readPressure measures the node now. A figure that cannot be read counts as
// no pressure: a missing /proc file must not take the node out of service.
func (a *Agent) readPressure() pressure {
	var p pressure
	if avail, ok := meminfo("MemAvailable:"); ok {
		p.memory = avail < memoryAvailableMin
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(a.opts.RootDir, &st); err == nil && st.Blocks > 0 {
		p.disk = float64(st.Bavail) < diskAvailableMin*float64(st.Blocks) ||
			(st.Files > 0 && float64(st.Ffree) < inodesFreeMin*float64(st.Files))
	}
	if max, err := readInt("/proc/sys/kernel/pid_max"); err == nil && max > 0 {
		if used, ok := threadCount(); ok {
			p.pid = float64(max-used) < pidsAvailableMin*float64(max)
		}
	}
	return p
}

// conditions are the node conditions of p, Ready last, with the reasons,
// messages and events the kubelet uses.
func (p pressure) conditions() []nodeCondition {
	cond := func(t corev1.NodeConditionType, bad bool, okReason, okMsg, badReason, badMsg string) nodeCondition {
		if bad {
			return nodeCondition{t, corev1.ConditionTrue, "Kubelet" + badReason, badMsg, "Node" + badReason}
		}
		return nodeCondition{t, corev1.ConditionFalse, "Kubelet" + okReason, okMsg, "Node" + okReason}
	}
	return []nodeCondition{
		cond(corev1.NodeMemoryPressure, p.memory, "HasSufficientMemory", "kubelet has sufficient memory available",
			"HasInsufficientMemory", "kubelet has insufficient memory available"),
		cond(corev1.NodeDiskPressure, p.disk, "HasNoDiskPressure", "kubelet has no disk pressure",
			"HasDiskPressure", "kubelet has disk pressure"),
		cond(corev1.NodePIDPressure, p.pid, "HasSufficientPID", "kubelet has sufficient PID available",
			"HasInsufficientPID", "kubelet has insufficient PID available"),
		{corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status", "NodeReady"},
	}
}

// nodeCondition is one condition the agent reports and the event that
// announces its change.
type nodeCondition struct {
	t       corev1.NodeConditionType
	status  corev1.ConditionStatus
	reason  string
	message string
	event   string
}

// meminfo reads a field of /proc/meminfo in bytes.
func meminfo(field string) (int64, bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == field {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// threadCount is the number of threads on the host (each holds a PID), the
// 4th field of /proc/loadavg ("running/total").
func threadCount() (int64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 4 {
		return 0, false
	}
	_, total, ok := strings.Cut(f[3], "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	return n, err == nil
}
