package agent

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	nodeutil "k8s.io/component-helpers/node/util"
	"k8s.io/utils/ptr"
)

// KubeletVersion is what nodes report as their kubelet version.
const KubeletVersion = "v1.37.2-skiff"

// leaseDuration is how long a node's lease is valid; it is renewed every leaseRenew.
const (
	leaseDuration = 40
	leaseRenew    = 10 * time.Second
)

// nodeIP picks the address pods on this node are reached at: the first
// global IPv4 address, else loopback.
func nodeIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

func memTotal() int64 {
	total, _ := meminfo("MemTotal:")
	return total
}

// nodeRef is what the agent's node events are about. As the kubelet does,
// its UID is the node's name (kubectl describe node looks for that).
func (a *Agent) nodeRef() *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Node", Name: a.opts.NodeName, UID: types.UID(a.opts.NodeName)}
}

func diskTotal(path string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0
	}
	return int64(st.Blocks) * int64(st.Bsize)
}

func kernelVersion() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return ""
	}
	b := make([]byte, 0, len(u.Release))
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

func osImage() string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

// nodeStatus describes this machine as the kubelet does.
func (a *Agent) nodeStatus(now metav1.Time, old *corev1.NodeStatus) corev1.NodeStatus {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(memTotal(), resource.BinarySI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(diskTotal(a.opts.RootDir), resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(cmp.Or(a.opts.MaxPods, DefaultMaxPods)), resource.DecimalSI),
	}
	hostname, _ := os.Hostname()
	st := corev1.NodeStatus{
		Capacity:        capacity,
		Allocatable:     capacity.DeepCopy(),
		Phase:           "",
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: a.ip}, {Type: corev1.NodeHostName, Address: hostname}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(a.opts.KubeletPort)}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID: machineID(), KernelVersion: kernelVersion(), OSImage: osImage(),
			ContainerRuntimeVersion: "process://0.1.0", KubeletVersion: KubeletVersion,
			OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH,
		},
	}
	for _, c := range a.readPressure().conditions() {
		nc := corev1.NodeCondition{Type: c.t, Status: c.status, Reason: c.reason, Message: c.message, LastHeartbeatTime: now, LastTransitionTime: now}
		changed := true
		if old != nil {
			for _, o := range old.Conditions {
				if o.Type == c.t && o.Status == c.status {
					nc.LastTransitionTime, changed = o.LastTransitionTime, false
				}
			}
		}
		if changed {
			a.recorder.Eventf(a.nodeRef(), corev1.EventTypeNormal, c.event, "Node %s status is now: %s", a.opts.NodeName, c.event)
		}
		st.Conditions = append(st.Conditions, nc)
	}
	return st
}

func machineID() string {
	b, _ := os.ReadFile("/etc/machine-id")
	return strings.TrimSpace(string(b))
}

// register creates or refreshes this node's Node object.
func (a *Agent) register(ctx context.Context) error {
	nodes := a.client.CoreV1().Nodes()
	labels := map[string]string{
		corev1.LabelHostname: a.opts.NodeName, corev1.LabelOSStable: runtime.GOOS, corev1.LabelArchStable: runtime.GOARCH,
		"beta.kubernetes.io/os": runtime.GOOS, "beta.kubernetes.io/arch": runtime.GOARCH,
	}
	for k, v := range a.opts.NodeLabels {
		labels[k] = v
	}
	now := metav1.Now()
	a.recorder.Event(a.nodeRef(), corev1.EventTypeNormal, "Starting", "Starting kubelet.")
	node, err := nodes.Get(ctx, a.opts.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.opts.NodeName, Labels: labels}, Spec: corev1.NodeSpec{Taints: a.opts.Taints}}
		node.Status = a.nodeStatus(now, nil)
		created, err := nodes.Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("register node %s: %w", a.opts.NodeName, err)
		}
		node = created
	} else if err != nil {
		return fmt.Errorf("get node %s: %w", a.opts.NodeName, err)
	} else {
		changed := false
		for k, v := range labels {
			if node.Labels[k] != v {
				if node.Labels == nil {
					node.Labels = map[string]string{}
				}
				node.Labels[k], changed = v, true
			}
		}
		if changed {
			if node, err = nodes.Update(ctx, node, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update node %s labels: %w", a.opts.NodeName, err)
			}
		}
	}
	node.Status = a.nodeStatus(now, &node.Status)
	if _, err := nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update node %s status: %w", a.opts.NodeName, err)
	}
	a.nodeUID = node.UID
	return nil
}

// heartbeat renews the lease every leaseRenew and then checks the node:
// status is posted every minute, and at once when pressure changed or the
// API shows the node not Ready (the node lifecycle controller marked it
// Unknown while this agent could not reach the server).
func (a *Agent) heartbeat(ctx context.Context) {
	lease := time.NewTicker(leaseRenew)
	defer lease.Stop()
	a.renewLease(ctx)
	last, posted := a.readPressure(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C:
			a.renewLease(ctx)
			p := a.readPressure()
			due := p != last || time.Since(posted) >= time.Minute
			if err := a.postStatus(ctx, due); err != nil {
				a.log.Warn("post node status", "err", err)
				continue
			}
			if due {
				last, posted = p, time.Now()
			}
		}
	}
}

// postStatus writes the node's status when force is set or the API does not
// show the node Ready.
func (a *Agent) postStatus(ctx context.Context, force bool) error {
	nodes := a.client.CoreV1().Nodes()
	// The first read is from the API server's cache, as the kubelet's; when
	// the write from it conflicts (the cache had not yet seen the node
	// lifecycle controller's change) the node is read again from etcd.
	opts := metav1.GetOptions{ResourceVersion: "0"}
	for {
		node, err := nodes.Get(ctx, a.opts.NodeName, opts)
		if apierrors.IsNotFound(err) {
			return a.register(ctx)
		}
		if err != nil {
			return fmt.Errorf("get node %s: %w", a.opts.NodeName, err)
		}
		if !force && nodeReady(node) {
			return nil
		}
		node.Status = a.nodeStatus(metav1.Now(), &node.Status)
		_, err = nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) && opts.ResourceVersion != "" {
			opts = metav1.GetOptions{}
			continue
		}
		if err != nil {
			return fmt.Errorf("update node %s status: %w", a.opts.NodeName, err)
		}
		return nil
	}
}

func nodeReady(n *corev1.Node) bool {
	_, c := nodeutil.GetNodeCondition(&n.Status, corev1.NodeReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

// renewLease renews the node's lease from the copy it last wrote, as the
// kubelet does, and reads it again only when someone else wrote or deleted
// it since.
func (a *Agent) renewLease(ctx context.Context) {
	leases := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	if l := a.lease; l != nil {
		l.Spec.RenewTime = &now
		written, err := leases.Update(ctx, l, metav1.UpdateOptions{})
		if a.keepLease(ctx, l, written, err, "renew node lease") {
			return
		}
	}
	l, err := leases.Get(ctx, a.opts.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.opts.NodeName, Namespace: corev1.NamespaceNodeLease,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: a.opts.NodeName, UID: a.nodeUID}}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(a.opts.NodeName), LeaseDurationSeconds: ptr.To(int32(leaseDuration)), RenewTime: &now},
		}
		written, err := leases.Create(ctx, l, metav1.CreateOptions{})
		a.keepLease(ctx, nil, written, err, "create node lease")
		return
	}
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("get node lease", "err", err)
		}
		return
	}
	l.Spec.RenewTime = &now
	l.Spec.HolderIdentity = ptr.To(a.opts.NodeName)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(leaseDuration))
	written, err := leases.Update(ctx, l, metav1.UpdateOptions{})
	a.keepLease(ctx, l, written, err, "renew node lease")
}

// keepLease records a lease write for the next renewal and reports whether
// a copy is kept: the written lease; after a conflict or NotFound none (the
// next renewal reads the lease); after another error the updated copy sent
// (sent; nil for a create), tried again rather than adding a read to a
// struggling server. Failures other than conflicts are logged.
func (a *Agent) keepLease(ctx context.Context, sent, written *coordinationv1.Lease, err error, what string) bool {
	switch {
	case err == nil:
		a.lease = written
		return true
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		a.lease = nil
		return false
	}
	if ctx.Err() == nil {
		a.log.Warn(what, "err", err)
	}
	a.lease = sent
	return sent != nil
}
