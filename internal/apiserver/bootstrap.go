package apiserver

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/skiff-sh/skiff/internal/registry"
)

// SystemNamespaces exist from the first start.
var SystemNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

func schemeForOpenAPI() *runtime.Scheme { return scheme.Scheme }

// bootstrap creates the system namespaces and the kubernetes Service.
func (s *Server) bootstrap(ctx context.Context) error {
	nh := s.byGR[registry.Namespaces.GR()]
	for _, ns := range SystemNamespaces {
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		obj.SetGroupVersionKind(registry.Namespaces.GVK)
		if _, err := nh.createObject(ctx, obj, &request{name: "", verb: "create"}, false); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	sh := s.byGR[registry.Services.GR()]
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: s.ipalloc.nth(1).String(),
			Ports:     []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(6443)}},
		},
	}
	svc.SetGroupVersionKind(registry.Services.GVK)
	if _, err := sh.store.Get(ctx, sh.store.Key(svc.Namespace, svc.Name), svc.Name); apierrors.IsNotFound(err) {
		if _, err := sh.createObject(ctx, svc, &request{namespace: svc.Namespace, verb: "create"}, false); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create kubernetes service: %w", err)
		}
	}
	return nil
}
