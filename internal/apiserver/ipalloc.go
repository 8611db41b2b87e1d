package apiserver

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry"
)

// ipAllocator hands out Service cluster IPs. Each IP in use is a key in etcd
// created in a transaction, so servers sharing one etcd never hand out the
// same IP twice.
type ipAllocator struct {
	cidr   *net.IPNet
	client *clientv3.Client
}

const ipKeyPrefix = "/registry/serviceips/"

func newIPAllocator(cidr *net.IPNet, client *clientv3.Client) *ipAllocator {
	return &ipAllocator{cidr: cidr, client: client}
}

func (a *ipAllocator) size() uint32 {
	ones, bits := a.cidr.Mask.Size()
	return uint32(1) << uint(bits-ones)
}

func (a *ipAllocator) nth(n uint32) net.IP {
	base := binary.BigEndian.Uint32(a.cidr.IP.To4())
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, base+n)
	return ip
}

func (a *ipAllocator) reserve(ctx context.Context, ip, owner string) (bool, error) {
	resp, err := a.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(ipKeyPrefix+ip), "=", 0)).
		Then(clientv3.OpPut(ipKeyPrefix+ip, owner)).Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// allocate reserves ip, or a random free one when ip is empty.
func (a *ipAllocator) allocate(ctx context.Context, ip, owner string) (string, error) {
	if ip != "" {
		parsed := net.ParseIP(ip)
		if parsed == nil || !a.cidr.Contains(parsed) {
			return "", fmt.Errorf("the provided IP (%s) is not in the valid range. The range of valid IPs is %s", ip, a.cidr)
		}
		ok, err := a.reserve(ctx, parsed.String(), owner)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", fmt.Errorf("provided IP is already allocated")
		}
		return parsed.String(), nil
	}
	n := a.size()
	// Skip the network address, .1 (the kubernetes Service) and broadcast.
	for tries := 0; tries < 64; tries++ {
		cand := a.nth(2 + rand.Uint32N(n-3)).String()
		ok, err := a.reserve(ctx, cand, owner)
		if err != nil {
			return "", err
		}
		if ok {
			return cand, nil
		}
	}
	return "", fmt.Errorf("range is full")
}

func (a *ipAllocator) release(ctx context.Context, ip string) {
	if ip != "" && ip != corev1.ClusterIPNone {
		_, _ = a.client.Delete(ctx, ipKeyPrefix+ip)
	}
}

// admitCreate allocates what a new object needs from shared pools.
func (h *resourceHandler) admitCreate(ctx context.Context, obj runtime.Object, dry bool) error {
	svc, ok := obj.(*corev1.Service)
	if !ok || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	// The cluster is IPv4 single-stack: every Service with cluster IPs (or
	// headless) gets that family and policy, as upstream's allocator sets.
	if len(svc.Spec.IPFamilies) == 0 {
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	if svc.Spec.IPFamilyPolicy == nil {
		single := corev1.IPFamilyPolicySingleStack
		svc.Spec.IPFamilyPolicy = &single
	}
	if dry || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil
	}
	ip, err := h.server.ipalloc.allocate(ctx, svc.Spec.ClusterIP, svc.Namespace+"/"+svc.Name)
	if err != nil {
		return apierrors.NewInvalid(registry.Services.GVK.GroupKind(), svc.Name,
			field.ErrorList{field.Invalid(field.NewPath("spec", "clusterIPs").Index(0), svc.Spec.ClusterIP, err.Error())})
	}
	svc.Spec.ClusterIP = ip
	svc.Spec.ClusterIPs = []string{ip}
	return nil
}

// releaseCreate gives back what admitCreate took when the create fails.
func (h *resourceHandler) releaseCreate(ctx context.Context, obj runtime.Object, dry bool) {
	if svc, ok := obj.(*corev1.Service); ok && !dry {
		h.server.ipalloc.release(ctx, svc.Spec.ClusterIP)
	}
}

// afterDelete releases a deleted object's pooled resources.
func (h *resourceHandler) afterDelete(ctx context.Context, obj runtime.Object) {
	if svc, ok := obj.(*corev1.Service); ok {
		h.server.ipalloc.release(ctx, svc.Spec.ClusterIP)
	}
}

// carryAllocated keeps what the server allocated when an update leaves it
// out, as upstream does: a Service's cluster IPs survive a PUT without them.
func carryAllocated(obj, cur runtime.Object) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	old := cur.(*corev1.Service)
	if svc.Spec.ClusterIP == "" {
		svc.Spec.ClusterIP = old.Spec.ClusterIP
	}
	if len(svc.Spec.ClusterIPs) == 0 {
		svc.Spec.ClusterIPs = old.Spec.ClusterIPs
	}
	if len(svc.Spec.IPFamilies) == 0 {
		svc.Spec.IPFamilies = old.Spec.IPFamilies
	}
	if svc.Spec.IPFamilyPolicy == nil {
		svc.Spec.IPFamilyPolicy = old.Spec.IPFamilyPolicy
	}
}
