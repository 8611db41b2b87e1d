package printers

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	discoveryv1beta1 "k8s.io/api/discovery/v1beta1"
	networkingv1 "k8s.io/api/networking/v1"
)

// coordination.k8s.io, discovery.k8s.io and networking.k8s.io printers.

var leaseColumns = columns(
	nameColumn(),
	stringColumn("Holder", coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]),
	ageColumn(),
)

func leaseCells(l *coordinationv1.Lease, now time.Time) []any {
	holder := ""
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	return []any{l.Name, holder, age(l.CreationTimestamp, now)}
}

var endpointSliceColumns = columns(
	nameColumn(),
	stringColumn("AddressType", discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["addressType"]),
	stringColumn("Ports", discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["ports"]),
	stringColumn("Endpoints", discoveryv1beta1.EndpointSlice{}.SwaggerDoc()["endpoints"]),
	ageColumn(),
)

func endpointSliceCells(es *discoveryv1.EndpointSlice, now time.Time) []any {
	ports := make([]string, len(es.Ports))
	for i, p := range es.Ports {
		switch {
		case p.Port != nil:
			ports[i] = strconv.Itoa(int(*p.Port))
		case p.Name != nil:
			ports[i] = *p.Name
		default:
			ports[i] = "*"
		}
	}
	var addrs []string
	for _, ep := range es.Endpoints {
		addrs = append(addrs, ep.Addresses...)
	}
	return []any{
		es.Name,
		string(es.AddressType),
		firstN(ports, 3, "<unset>"),
		firstN(addrs, 3, "<unset>"),
		age(es.CreationTimestamp, now),
	}
}

var ingressColumns = columns(
	nameColumn(),
	stringColumn("Class", "The name of the IngressClass resource that should be used for additional configuration"),
	stringColumn("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
	stringColumn("Address", "Address is a list containing ingress points for the load-balancer"),
	stringColumn("Ports", "Ports of TLS configurations that open"),
	ageColumn(),
)

func ingressCells(in *networkingv1.Ingress, now time.Time) []any {
	class := "<none>"
	if in.Spec.IngressClassName != nil {
		class = *in.Spec.IngressClassName
	}
	ports := "80"
	if len(in.Spec.TLS) != 0 {
		ports = "80, 443"
	}
	address := loadBalancerAddresses(in.Status.LoadBalancer.Ingress, func(i networkingv1.IngressLoadBalancerIngress) (string, string) { return i.IP, i.Hostname })
	return []any{in.Name, class, ingressHosts(in.Spec.Rules), address, ports, age(in.CreationTimestamp, now)}
}

// ingressHosts lists the first three rule hosts ("*" when none is set); when
// more rules follow, it adds "+ N more..." counting all remaining rules.
func ingressHosts(rules []networkingv1.IngressRule) string {
	const max = 3
	var hosts []string
	more := false
	for _, r := range rules {
		if len(hosts) == max {
			more = true
			break
		}
		if r.Host != "" {
			hosts = append(hosts, r.Host)
		}
	}
	if len(hosts) == 0 {
		return "*"
	}
	if more {
		return fmt.Sprintf("%s + %d more...", strings.Join(hosts, ","), len(rules)-max)
	}
	return strings.Join(hosts, ",")
}

var ingressClassColumns = columns(
	nameColumn(),
	stringColumn("Controller", "Controller that is responsible for handling this class"),
	stringColumn("Parameters", "A reference to a resource with additional parameters"),
	ageColumn(),
)

func ingressClassCells(ic *networkingv1.IngressClass, now time.Time) []any {
	params := "<none>"
	if p := ic.Spec.Parameters; p != nil {
		params = p.Kind
		if p.APIGroup != nil {
			params += "." + *p.APIGroup
		}
		params += "/" + p.Name
	}
	return []any{ic.Name, ic.Spec.Controller, params, age(ic.CreationTimestamp, now)}
}
