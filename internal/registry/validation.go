package registry

// Validation, per kind, with upstream's field paths and messages (from
// k8s.io/kubernetes/pkg/apis/*/validation). The handler checks metadata, then
// calls Validate on create and update and ValidateUpdate on update, after
// Default; so these check the defaulted object, and ValidateUpdate checks only
// what may not change.

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // CronJob spec.timeZone is checked against the embedded zone database

	"github.com/robfig/cron/v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	pathvalidation "k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func init() {
	Pods.Validate = validatePod
	Pods.ValidateUpdate = validatePodUpdate
	ReplicationControllers.Validate = validateReplicationController
	ReplicaSets.Validate = validateReplicaSet
	ReplicaSets.ValidateUpdate = validateReplicaSetUpdate
	Deployments.Validate = validateDeployment
	Deployments.ValidateUpdate = validateDeploymentUpdate
	Jobs.Validate = validateJob
	Jobs.ValidateUpdate = validateJobUpdate
	CronJobs.Validate = validateCronJob
	Services.Validate = validateService
	Services.ValidateUpdate = validateServiceUpdate
	ConfigMaps.Validate = validateConfigMap
	ConfigMaps.ValidateUpdate = validateConfigMapUpdate
	Secrets.Validate = validateSecret
	Secrets.ValidateUpdate = validateSecretUpdate
	Namespaces.Validate = validateNamespace
	Nodes.Validate = validateNode
	Endpoints.Validate = validateEndpoints
	EndpointSlices.Validate = validateEndpointSlice
	EndpointSlices.ValidateUpdate = validateEndpointSliceUpdate
	Ingresses.Validate = validateIngress
	IngressClasses.Validate = validateIngressClass
	IngressClasses.ValidateUpdate = validateIngressClassUpdate
	Leases.Validate = validateLease
	Events.Validate = validateEvent
	// ServiceAccount: upstream validates only its metadata, which the handler does.
}

// ---- Small helpers ----

// oneOf reports an empty value as Required and an unknown one as NotSupported.
func oneOf[T ~string](value T, valid []T, p *field.Path) field.ErrorList {
	if value == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	if !slices.Contains(valid, value) {
		return field.ErrorList{field.NotSupported(p, value, valid)}
	}
	return nil
}

// messages turns a validation.Is* result into Invalid errors.
func messages(p *field.Path, value any, msgs []string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range msgs {
		errs = append(errs, field.Invalid(p, value, msg))
	}
	return errs
}

func dnsLabel(value string, p *field.Path) field.ErrorList {
	return messages(p, value, validation.IsDNS1123Label(value))
}

func dnsSubdomain(value string, p *field.Path) field.ErrorList {
	return messages(p, value, validation.IsDNS1123Subdomain(value))
}

func qualifiedName(value string, p *field.Path) field.ErrorList {
	return messages(p, value, validation.IsQualifiedName(value))
}

func portNum(port int32, p *field.Path) field.ErrorList {
	return messages(p, port, validation.IsValidPortNum(int(port)))
}

func portNumOrName(port intstr.IntOrString, p *field.Path) field.ErrorList {
	if port.Type == intstr.String {
		return messages(p, port.StrVal, validation.IsValidPortName(port.StrVal))
	}
	return messages(p, port.IntValue(), validation.IsValidPortNum(port.IntValue()))
}

// nonNegative checks an optional number; nil means unset and is fine.
func nonNegative[T int32 | int64](v *T, p *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	return apivalidation.ValidateNonnegativeField(int64(*v), p)
}

func positive(v int64, p *field.Path) field.ErrorList {
	if v <= 0 {
		return field.ErrorList{field.Invalid(p, v, "must be greater than zero")}
	}
	return nil
}

var immutable = apivalidation.ValidateImmutableField

// ipFamilyOf returns 4 or 6 for an IP, 0 for anything else.
func ipFamilyOf(ip net.IP) int {
	switch {
	case ip == nil:
		return 0
	case ip.To4() != nil:
		return 4
	}
	return 6
}

var protocols = []corev1.Protocol{corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP}

// ---- Pods ----

func validatePod(obj runtime.Object) field.ErrorList {
	pod := obj.(*corev1.Pod)
	specPath := field.NewPath("spec")
	errs := validatePodSpec(&pod.Spec, specPath)
	// Checks upstream makes on Pods but not templates, for compatibility.
	for _, cs := range []struct {
		list []corev1.Container
		name string
	}{{pod.Spec.Containers, "containers"}, {pod.Spec.InitContainers, "initContainers"}} {
		for i, c := range cs.list {
			if strings.TrimSpace(c.Image) != c.Image {
				errs = append(errs, field.Invalid(specPath.Child(cs.name).Index(i).Child("image"), c.Image, "must not have leading or trailing whitespace"))
			}
		}
	}
	if len(pod.Spec.EphemeralContainers) > 0 {
		// They are added only through the ephemeralcontainers subresource.
		errs = append(errs, field.Forbidden(specPath.Child("ephemeralContainers"), "cannot be set on create"))
	}
	if pod.Spec.NodeName != "" && len(pod.Spec.SchedulingGates) > 0 {
		errs = append(errs, field.Forbidden(specPath.Child("nodeName"), "cannot be set until all schedulingGates have been cleared"))
	}
	return errs
}

// podContext is what a container's checks need from the rest of the pod.
type podContext struct {
	volumes map[string]bool // volumes that validated
	names   map[string]bool // container names seen so far, across kinds
	grace   *int64          // terminationGracePeriodSeconds, bounding sleep actions
}

// validatePodSpec is the one pod-spec validator, shared by Pods and every
// workload's template.
func validatePodSpec(spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	vols, errs := validateVolumes(spec.Volumes, p.Child("volumes"))
	ctx := &podContext{volumes: vols, names: map[string]bool{}, grace: spec.TerminationGracePeriodSeconds}
	errs = append(errs, validateContainers(spec.InitContainers, true, ctx, p.Child("initContainers"))...)
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), ""))
	}
	errs = append(errs, validateContainers(spec.Containers, false, ctx, p.Child("containers"))...)
	errs = append(errs, oneOf(spec.RestartPolicy,
		[]corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}, p.Child("restartPolicy"))...)
	errs = append(errs, oneOf(spec.DNSPolicy,
		[]corev1.DNSPolicy{corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone}, p.Child("dnsPolicy"))...)
	errs = append(errs, metav1validation.ValidateLabels(spec.NodeSelector, p.Child("nodeSelector"))...)
	if spec.ServiceAccountName != "" {
		errs = append(errs, dnsSubdomain(spec.ServiceAccountName, p.Child("serviceAccountName"))...)
	}
	if spec.NodeName != "" {
		errs = append(errs, dnsSubdomain(spec.NodeName, p.Child("nodeName"))...)
	}
	if v := spec.ActiveDeadlineSeconds; v != nil && (*v < 1 || *v > math.MaxInt32) {
		errs = append(errs, field.Invalid(p.Child("activeDeadlineSeconds"), *v, validation.InclusiveRangeError(1, math.MaxInt32)))
	}
	if spec.Hostname != "" {
		errs = append(errs, dnsLabel(spec.Hostname, p.Child("hostname"))...)
	}
	if spec.Subdomain != "" {
		errs = append(errs, dnsLabel(spec.Subdomain, p.Child("subdomain"))...)
	}
	if spec.PriorityClassName != "" {
		errs = append(errs, dnsSubdomain(spec.PriorityClassName, p.Child("priorityClassName"))...)
	}
	errs = append(errs, validateTolerations(spec.Tolerations, p.Child("tolerations"))...)
	if spec.Resources != nil {
		errs = append(errs, validateResources(spec.Resources, p.Child("resources"))...)
	}
	return errs
}

var (
	pullPolicies    = []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}
	restartPolicies = []corev1.ContainerRestartPolicy{corev1.ContainerRestartPolicyAlways, "OnFailure", "Never"}
	httpSchemes     = []corev1.URIScheme{corev1.URISchemeHTTP, corev1.URISchemeHTTPS}
	termMsgPolicies = []corev1.TerminationMessagePolicy{corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError}
)

func validateContainers(cs []corev1.Container, init bool, ctx *podContext, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i := range cs {
		c, cp := &cs[i], p.Index(i)
		if namePath := cp.Child("name"); c.Name == "" {
			errs = append(errs, field.Required(namePath, ""))
		} else {
			errs = append(errs, dnsLabel(c.Name, namePath)...)
			if ctx.names[c.Name] {
				errs = append(errs, field.Duplicate(namePath, c.Name))
			}
			ctx.names[c.Name] = true
		}
		if c.Image == "" {
			errs = append(errs, field.Required(cp.Child("image"), ""))
		}
		errs = append(errs, oneOf(c.ImagePullPolicy, pullPolicies, cp.Child("imagePullPolicy"))...)
		errs = append(errs, oneOf(c.TerminationMessagePolicy, termMsgPolicies, cp.Child("terminationMessagePolicy"))...)
		if c.RestartPolicy != nil {
			errs = append(errs, oneOf(*c.RestartPolicy, restartPolicies, cp.Child("restartPolicy"))...)
		}
		errs = append(errs, validateContainerPorts(c.Ports, cp.Child("ports"))...)
		errs = append(errs, validateEnv(c.Env, cp.Child("env"))...)
		errs = append(errs, validateEnvFrom(c.EnvFrom, cp.Child("envFrom"))...)
		errs = append(errs, validateVolumeMounts(c.VolumeMounts, ctx.volumes, cp.Child("volumeMounts"))...)
		errs = append(errs, validateResources(&c.Resources, cp.Child("resources"))...)

		sidecar := init && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		if init && !sidecar {
			// A plain init container runs to completion: nothing to probe or hook.
			for _, f := range []struct {
				name string
				set  bool
			}{
				{"lifecycle", c.Lifecycle != nil}, {"livenessProbe", c.LivenessProbe != nil},
				{"readinessProbe", c.ReadinessProbe != nil}, {"startupProbe", c.StartupProbe != nil},
			} {
				if f.set {
					errs = append(errs, field.Forbidden(cp.Child(f.name), "may not be set for init containers without restartPolicy=Always"))
				}
			}
			continue
		}
		errs = append(errs, validateProbe(c.LivenessProbe, ctx, cp.Child("livenessProbe"))...)
		errs = append(errs, validateProbe(c.ReadinessProbe, ctx, cp.Child("readinessProbe"))...)
		errs = append(errs, validateProbe(c.StartupProbe, ctx, cp.Child("startupProbe"))...)
		// Liveness and startup answer yes or no: one success is enough.
		if c.LivenessProbe != nil && c.LivenessProbe.SuccessThreshold != 1 {
			errs = append(errs, field.Invalid(cp.Child("livenessProbe", "successThreshold"), c.LivenessProbe.SuccessThreshold, "must be 1"))
		}
		if c.StartupProbe != nil && c.StartupProbe.SuccessThreshold != 1 {
			errs = append(errs, field.Invalid(cp.Child("startupProbe", "successThreshold"), c.StartupProbe.SuccessThreshold, "must be 1"))
		}
		if c.Lifecycle != nil {
			errs = append(errs, validateLifecycleHandler(c.Lifecycle.PostStart, ctx, cp.Child("lifecycle", "postStart"))...)
			errs = append(errs, validateLifecycleHandler(c.Lifecycle.PreStop, ctx, cp.Child("lifecycle", "preStop"))...)
		}
	}
	return errs
}

func validateContainerPorts(ports []corev1.ContainerPort, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, port := range ports {
		pp := p.Index(i)
		if port.Name != "" {
			if msgs := validation.IsValidPortName(port.Name); len(msgs) > 0 {
				errs = append(errs, messages(pp.Child("name"), port.Name, msgs)...)
			} else if names[port.Name] {
				errs = append(errs, field.Duplicate(pp.Child("name"), port.Name))
			}
			names[port.Name] = true
		}
		if port.ContainerPort == 0 {
			errs = append(errs, field.Required(pp.Child("containerPort"), ""))
		} else {
			errs = append(errs, portNum(port.ContainerPort, pp.Child("containerPort"))...)
		}
		if port.HostPort != 0 {
			errs = append(errs, portNum(port.HostPort, pp.Child("hostPort"))...)
		}
		errs = append(errs, oneOf(port.Protocol, protocols, pp.Child("protocol"))...)
	}
	return errs
}

// Fields a pod's env can read through fieldRef, besides subscripted
// metadata.labels['k'] and metadata.annotations['k'].
var envFieldPaths = []string{
	"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
	"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
}

func validateEnv(env []corev1.EnvVar, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ev := range env {
		ep := p.Index(i)
		if ev.Name == "" {
			errs = append(errs, field.Required(ep.Child("name"), ""))
		} else {
			errs = append(errs, messages(ep.Child("name"), ev.Name, validation.IsRelaxedEnvVarName(ev.Name))...)
		}
		from := ev.ValueFrom
		if from == nil {
			continue
		}
		fp := ep.Child("valueFrom")
		n := 0
		if from.FieldRef != nil {
			n++
			errs = append(errs, validateFieldRef(from.FieldRef, envFieldPaths, fp.Child("fieldRef"))...)
		}
		if from.ResourceFieldRef != nil {
			n++
			if from.ResourceFieldRef.Resource == "" {
				errs = append(errs, field.Required(fp.Child("resourceFieldRef", "resource"), ""))
			}
		}
		if from.ConfigMapKeyRef != nil {
			n++
			errs = append(errs, validateKeySelector(from.ConfigMapKeyRef.Name, from.ConfigMapKeyRef.Key, fp.Child("configMapKeyRef"))...)
		}
		if from.SecretKeyRef != nil {
			n++
			errs = append(errs, validateKeySelector(from.SecretKeyRef.Name, from.SecretKeyRef.Key, fp.Child("secretKeyRef"))...)
		}
		if from.FileKeyRef != nil {
			n++
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(fp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
		case ev.Value != "":
			errs = append(errs, field.Invalid(fp, "", "may not be specified when `value` is not empty"))
		case n > 1:
			errs = append(errs, field.Invalid(fp, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

func validateKeySelector(name, key string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	if key == "" {
		errs = append(errs, field.Required(p.Child("key"), ""))
	} else {
		errs = append(errs, messages(p.Child("key"), key, validation.IsConfigMapKey(key))...)
	}
	return errs
}

func validateFieldRef(f *corev1.ObjectFieldSelector, valid []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if f.APIVersion == "" {
		errs = append(errs, field.Required(p.Child("apiVersion"), ""))
	}
	if f.FieldPath == "" {
		return append(errs, field.Required(p.Child("fieldPath"), ""))
	}
	for _, prefix := range []string{"metadata.labels['", "metadata.annotations['"} {
		if strings.HasPrefix(f.FieldPath, prefix) && strings.HasSuffix(f.FieldPath, "']") {
			return errs
		}
	}
	if !slices.Contains(valid, f.FieldPath) {
		errs = append(errs, field.NotSupported(p.Child("fieldPath"), f.FieldPath, valid))
	}
	return errs
}

func validateEnvFrom(envFrom []corev1.EnvFromSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ef := range envFrom {
		ep := p.Index(i)
		if ef.Prefix != "" {
			errs = append(errs, messages(ep.Child("prefix"), ef.Prefix, validation.IsRelaxedEnvVarName(ef.Prefix))...)
		}
		switch {
		case ef.ConfigMapRef == nil && ef.SecretRef == nil:
			errs = append(errs, field.Invalid(ep, "", "must specify one of: `configMapRef` or `secretRef`"))
		case ef.ConfigMapRef != nil && ef.SecretRef != nil:
			errs = append(errs, field.Invalid(ep, "", "may not have more than one field specified at a time"))
		case ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == "":
			errs = append(errs, field.Required(ep.Child("configMapRef", "name"), ""))
		case ef.SecretRef != nil && ef.SecretRef.Name == "":
			errs = append(errs, field.Required(ep.Child("secretRef", "name"), ""))
		}
	}
	return errs
}

func validateVolumeMounts(mounts []corev1.VolumeMount, volumes map[string]bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := map[string]bool{}
	for i, m := range mounts {
		mp := p.Index(i)
		if m.Name == "" {
			errs = append(errs, field.Required(mp.Child("name"), ""))
		}
		if !volumes[m.Name] {
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		if m.MountPath == "" {
			errs = append(errs, field.Required(mp.Child("mountPath"), ""))
		} else if paths[m.MountPath] {
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be unique"))
		}
		paths[m.MountPath] = true
		if m.SubPath != "" {
			errs = append(errs, localDescendingPath(m.SubPath, mp.Child("subPath"))...)
			if m.SubPathExpr != "" {
				errs = append(errs, field.Invalid(mp.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
			}
		}
	}
	return errs
}

// localDescendingPath: a path that stays inside the directory it is joined to.
func localDescendingPath(target string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if path.IsAbs(target) {
		errs = append(errs, field.Invalid(p, target, "must be a relative path"))
	}
	if slices.Contains(strings.Split(target, "/"), "..") {
		errs = append(errs, field.Invalid(p, target, "must not contain '..'"))
	}
	return errs
}

// ---- Resources ----

var (
	standardContainerResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage}
	isNegativeMsg              = apivalidation.IsNegativeErrorMsg
)

// nativeResource: defined by Kubernetes (unprefixed or kubernetes.io/...),
// as opposed to an extended resource a device plugin advertises.
func nativeResource(name corev1.ResourceName) bool {
	return !strings.Contains(string(name), "/") || strings.Contains(string(name), corev1.ResourceDefaultNamespacePrefix)
}

func hugePages(name corev1.ResourceName) bool {
	return strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

// overcommitAllowed: a request may be below its limit. Huge pages and
// extended resources are handed out whole, so request must equal limit.
func overcommitAllowed(name corev1.ResourceName) bool {
	return nativeResource(name) && !hugePages(name)
}

func validateResourceName(name corev1.ResourceName, p *field.Path) field.ErrorList {
	errs := qualifiedName(string(name), p)
	switch {
	case !strings.Contains(string(name), "/"):
		if !slices.Contains(standardContainerResources, name) && !hugePages(name) {
			errs = append(errs, field.Invalid(p, name, "must be a standard resource for containers"))
		}
	case !nativeResource(name):
		if strings.HasPrefix(string(name), "requests.") || len(validation.IsQualifiedName("requests."+string(name))) > 0 {
			errs = append(errs, field.Invalid(p, name, "doesn't follow extended resource name standard"))
		}
	}
	return errs
}

func validateQuantities(list corev1.ResourceList, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range slices.Sorted(maps.Keys(list)) {
		q, qp := list[name], p.Key(string(name))
		if q.Sign() < 0 {
			errs = append(errs, field.Invalid(qp, q.String(), isNegativeMsg))
		}
		if !nativeResource(name) && q.MilliValue()%1000 != 0 {
			errs = append(errs, field.Invalid(qp, q.String(), "must be an integer"))
		}
	}
	return errs
}

func validateResources(r *corev1.ResourceRequirements, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	limPath, reqPath := p.Child("limits"), p.Child("requests")
	for _, name := range slices.Sorted(maps.Keys(r.Limits)) {
		errs = append(errs, validateResourceName(name, limPath.Key(string(name)))...)
	}
	errs = append(errs, validateQuantities(r.Limits, limPath)...)
	for _, name := range slices.Sorted(maps.Keys(r.Requests)) {
		errs = append(errs, validateResourceName(name, reqPath.Key(string(name)))...)
		req := r.Requests[name]
		limit, ok := r.Limits[name]
		switch {
		case ok && req.Cmp(limit) != 0 && !overcommitAllowed(name):
			errs = append(errs, field.Invalid(reqPath, req.String(), fmt.Sprintf("must be equal to %s limit of %s", name, limit.String())))
		case ok && req.Cmp(limit) > 0:
			errs = append(errs, field.Invalid(reqPath, req.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, limit.String())))
		case !ok && !overcommitAllowed(name):
			errs = append(errs, field.Required(limPath, "Limit must be set for non overcommitable resources"))
		}
	}
	errs = append(errs, validateQuantities(r.Requests, reqPath)...)
	return errs
}

// ---- Probes and lifecycle hooks ----

// handler is what probes and lifecycle hooks share: exactly one action.
type handler struct {
	exec      *corev1.ExecAction
	httpGet   *corev1.HTTPGetAction
	tcpSocket *corev1.TCPSocketAction
	grpc      *corev1.GRPCAction
	sleep     *corev1.SleepAction
}

func validateProbe(pr *corev1.Probe, ctx *podContext, p *field.Path) field.ErrorList {
	if pr == nil {
		return nil
	}
	h := pr.ProbeHandler
	errs := validateHandler(handler{exec: h.Exec, httpGet: h.HTTPGet, tcpSocket: h.TCPSocket, grpc: h.GRPC}, ctx, p)
	errs = append(errs, nonNegative(&pr.InitialDelaySeconds, p.Child("initialDelaySeconds"))...)
	errs = append(errs, nonNegative(&pr.TimeoutSeconds, p.Child("timeoutSeconds"))...)
	errs = append(errs, nonNegative(&pr.PeriodSeconds, p.Child("periodSeconds"))...)
	errs = append(errs, nonNegative(&pr.SuccessThreshold, p.Child("successThreshold"))...)
	errs = append(errs, nonNegative(&pr.FailureThreshold, p.Child("failureThreshold"))...)
	if g := pr.TerminationGracePeriodSeconds; g != nil && *g <= 0 {
		errs = append(errs, field.Invalid(p.Child("terminationGracePeriodSeconds"), *g, "must be greater than 0"))
	}
	return errs
}

func validateLifecycleHandler(h *corev1.LifecycleHandler, ctx *podContext, p *field.Path) field.ErrorList {
	if h == nil {
		return nil
	}
	return validateHandler(handler{exec: h.Exec, httpGet: h.HTTPGet, tcpSocket: h.TCPSocket, sleep: h.Sleep}, ctx, p)
}

func validateHandler(h handler, ctx *podContext, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	check := func(set bool, name string, fn func(p *field.Path) field.ErrorList) {
		if !set {
			return
		}
		if n++; n > 1 {
			errs = append(errs, field.Forbidden(p.Child(name), "may not specify more than 1 handler type"))
			return
		}
		errs = append(errs, fn(p.Child(name))...)
	}
	check(h.exec != nil, "exec", func(p *field.Path) field.ErrorList {
		if len(h.exec.Command) == 0 {
			return field.ErrorList{field.Required(p.Child("command"), "")}
		}
		return nil
	})
	check(h.httpGet != nil, "httpGet", func(p *field.Path) field.ErrorList {
		var errs field.ErrorList
		if h.httpGet.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		}
		errs = append(errs, portNumOrName(h.httpGet.Port, p.Child("port"))...)
		if !slices.Contains(httpSchemes, h.httpGet.Scheme) {
			errs = append(errs, field.NotSupported(p.Child("scheme"), h.httpGet.Scheme, httpSchemes))
		}
		for i, hdr := range h.httpGet.HTTPHeaders {
			errs = append(errs, messages(p.Child("httpHeaders").Index(i).Child("name"), hdr.Name, validation.IsHTTPHeaderName(hdr.Name))...)
		}
		return errs
	})
	check(h.tcpSocket != nil, "tcpSocket", func(p *field.Path) field.ErrorList {
		return portNumOrName(h.tcpSocket.Port, p.Child("port"))
	})
	check(h.grpc != nil, "grpc", func(p *field.Path) field.ErrorList {
		return portNum(h.grpc.Port, p.Child("port"))
	})
	check(h.sleep != nil, "sleep", func(p *field.Path) field.ErrorList {
		// A pre-stop sleep must end before the pod is killed.
		if g := ctx.grace; g != nil && (h.sleep.Seconds < 0 || h.sleep.Seconds > *g) {
			return field.ErrorList{field.Invalid(p, h.sleep.Seconds,
				fmt.Sprintf("must be non-negative and less than terminationGracePeriodSeconds (%d)", *g))}
		}
		return nil
	})
	if n == 0 {
		errs = append(errs, field.Required(p, "must specify a handler type"))
	}
	return errs
}

// ---- Volumes ----

const fileModeMsg = "must be a number between 0 and 0777 (octal), both inclusive"

var hostPathTypes = []corev1.HostPathType{
	corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory, corev1.HostPathFileOrCreate,
	corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev,
}

// validateVolumes returns the names of the volumes that validated: a mount of
// an invalid volume is reported as not found too, as upstream does.
func validateVolumes(vols []corev1.Volume, p *field.Path) (map[string]bool, field.ErrorList) {
	var errs field.ErrorList
	names := map[string]bool{}
	for i := range vols {
		v, vp := &vols[i], p.Index(i)
		var verrs field.ErrorList
		if v.Name == "" {
			verrs = append(verrs, field.Required(vp.Child("name"), ""))
		} else {
			verrs = append(verrs, dnsLabel(v.Name, vp.Child("name"))...)
		}
		if names[v.Name] {
			verrs = append(verrs, field.Duplicate(vp.Child("name"), v.Name))
		}
		verrs = append(verrs, validateVolumeSource(&v.VolumeSource, vp)...)
		if len(verrs) == 0 {
			names[v.Name] = true
		}
		errs = append(errs, verrs...)
	}
	return names, errs
}

func validateVolumeSource(s *corev1.VolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	sources := volumeSources(s)
	if len(sources) == 0 {
		return field.ErrorList{field.Required(p, "must specify a volume type")}
	}
	for _, extra := range sources[1:] {
		errs = append(errs, field.Forbidden(p.Child(extra), "may not specify more than 1 volume type"))
	}
	fileMode := func(mode *int32, p *field.Path) {
		if mode != nil && (*mode < 0 || *mode > 0777) {
			errs = append(errs, field.Invalid(p, *mode, fileModeMsg))
		}
	}
	items := func(items []corev1.KeyToPath, p *field.Path) {
		for i, kp := range items {
			ip := p.Index(i)
			if kp.Key == "" {
				errs = append(errs, field.Required(ip.Child("key"), ""))
			}
			errs = append(errs, validateItemPath(kp.Path, ip.Child("path"))...)
			fileMode(kp.Mode, ip.Child("mode"))
		}
	}
	if hp := s.HostPath; hp != nil {
		if hp.Path == "" {
			errs = append(errs, field.Required(p.Child("hostPath", "path"), ""))
		}
		if hp.Type != nil && !slices.Contains(hostPathTypes, *hp.Type) {
			errs = append(errs, field.NotSupported(p.Child("hostPath", "type"), *hp.Type, hostPathTypes))
		}
	}
	if ed := s.EmptyDir; ed != nil && ed.SizeLimit != nil && ed.SizeLimit.Sign() < 0 {
		errs = append(errs, field.Forbidden(p.Child("emptyDir", "sizeLimit"), "SizeLimit field must be a valid resource quantity"))
	}
	if sec := s.Secret; sec != nil {
		if sec.SecretName == "" {
			errs = append(errs, field.Required(p.Child("secret", "secretName"), ""))
		}
		fileMode(sec.DefaultMode, p.Child("secret", "defaultMode"))
		items(sec.Items, p.Child("secret", "items"))
	}
	if cm := s.ConfigMap; cm != nil {
		if cm.Name == "" {
			errs = append(errs, field.Required(p.Child("configMap", "name"), ""))
		}
		fileMode(cm.DefaultMode, p.Child("configMap", "defaultMode"))
		items(cm.Items, p.Child("configMap", "items"))
	}
	if da := s.DownwardAPI; da != nil {
		fileMode(da.DefaultMode, p.Child("downwardAPI", "defaultMode"))
		for i, item := range da.Items {
			ip := p.Child("downwardAPI", "items").Index(i)
			errs = append(errs, validateItemPath(item.Path, ip.Child("path"))...)
			fileMode(item.Mode, ip.Child("mode"))
		}
	}
	if pr := s.Projected; pr != nil {
		fileMode(pr.DefaultMode, p.Child("projected", "defaultMode"))
	}
	if pvc := s.PersistentVolumeClaim; pvc != nil && pvc.ClaimName == "" {
		errs = append(errs, field.Required(p.Child("persistentVolumeClaim", "claimName"), ""))
	}
	if nfs := s.NFS; nfs != nil {
		if nfs.Server == "" {
			errs = append(errs, field.Required(p.Child("nfs", "server"), ""))
		}
		if nfs.Path == "" {
			errs = append(errs, field.Required(p.Child("nfs", "path"), ""))
		} else if !path.IsAbs(nfs.Path) {
			errs = append(errs, field.Invalid(p.Child("nfs", "path"), nfs.Path, "must be an absolute path"))
		}
	}
	return errs
}

// validateItemPath: where a projected key lands inside the volume.
func validateItemPath(target string, p *field.Path) field.ErrorList {
	if target == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	errs := localDescendingPath(target, p)
	if strings.HasPrefix(path.Clean(target), "..") {
		errs = append(errs, field.Invalid(p, target, "must not start with '..'"))
	}
	return errs
}

// ---- Tolerations and taints ----

var taintEffects = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}

func validateTolerations(ts []corev1.Toleration, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range ts {
		tp := p.Index(i)
		if t.Key != "" {
			errs = append(errs, metav1validation.ValidateLabelName(t.Key, tp.Child("key"))...)
		}
		// An empty key with Exists matches every taint.
		if t.Key == "" && t.Operator != corev1.TolerationOpExists {
			errs = append(errs, field.Invalid(tp.Child("operator"), t.Operator,
				"operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
		}
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			errs = append(errs, field.Invalid(tp.Child("effect"), t.Effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
		}
		switch t.Operator {
		case corev1.TolerationOpEqual, "":
			if msgs := validation.IsValidLabelValue(t.Value); len(msgs) > 0 {
				errs = append(errs, field.Invalid(tp.Child("operator"), t.Value, strings.Join(msgs, ";")))
			}
		case corev1.TolerationOpExists:
			if t.Value != "" {
				errs = append(errs, field.Invalid(tp.Child("operator"), t, "value must be empty when `operator` is 'Exists'"))
			}
		default:
			errs = append(errs, field.NotSupported(tp.Child("operator"), t.Operator,
				[]corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}))
		}
		// An empty effect matches every effect.
		if t.Effect != "" && !slices.Contains(taintEffects, t.Effect) {
			errs = append(errs, field.NotSupported(tp.Child("effect"), t.Effect, taintEffects))
		}
	}
	return errs
}

func validateTaints(taints []corev1.Taint, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	type keyEffect struct {
		key    string
		effect corev1.TaintEffect
	}
	seen := map[keyEffect]bool{}
	for i, t := range taints {
		tp := p.Index(i)
		errs = append(errs, metav1validation.ValidateLabelName(t.Key, tp.Child("key"))...)
		if msgs := validation.IsValidLabelValue(t.Value); len(msgs) > 0 {
			errs = append(errs, field.Invalid(tp.Child("value"), t.Value, strings.Join(msgs, ";")))
		}
		errs = append(errs, oneOf(t.Effect, taintEffects, tp.Child("effect"))...)
		if k := (keyEffect{t.Key, t.Effect}); seen[k] {
			dup := field.Duplicate(tp, t)
			dup.Detail = "taints must be unique by key and effect pair"
			errs = append(errs, dup)
		} else {
			seen[k] = true
		}
	}
	return errs
}

// ---- Pod updates ----

// withDefaults returns a defaulted copy of a stored object. Upstream defaults
// objects as it reads them from storage, so a default added since an object
// was written does not count as a change to a field that may not change.
func withDefaults(r *Resource, old runtime.Object) runtime.Object {
	c := old.DeepCopyObject()
	r.Default(c)
	return c
}

var updatablePodSpecFields = []string{
	"`spec.containers[*].image`",
	"`spec.initContainers[*].image`",
	"`spec.activeDeadlineSeconds`",
	"`spec.tolerations` (only additions to existing tolerations)",
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
}

// validatePodUpdate: a pod's spec is fixed once created, except for the
// fields above (and removing scheduling gates). Everything else is compared
// after copying those fields from the old spec.
func validatePodUpdate(obj, old runtime.Object) field.ErrorList {
	pod, oldPod := obj.(*corev1.Pod), withDefaults(Pods, old).(*corev1.Pod)
	specPath := field.NewPath("spec")
	var errs field.ErrorList
	for _, cs := range []struct {
		name     string
		new, old []corev1.Container
	}{{"containers", pod.Spec.Containers, oldPod.Spec.Containers}, {"initContainers", pod.Spec.InitContainers, oldPod.Spec.InitContainers}} {
		cp := specPath.Child(cs.name)
		if len(cs.new) != len(cs.old) {
			return append(errs, field.Forbidden(cp, "pod updates may not add or remove containers"))
		}
		for i, c := range cs.new {
			if c.Image == "" {
				errs = append(errs, field.Required(cp.Index(i).Child("image"), ""))
			}
		}
	}

	adsPath := specPath.Child("activeDeadlineSeconds")
	switch newADS, oldADS := pod.Spec.ActiveDeadlineSeconds, oldPod.Spec.ActiveDeadlineSeconds; {
	case newADS == nil && oldADS != nil:
		errs = append(errs, field.Invalid(adsPath, newADS, "must not update from a positive integer to nil value"))
	case newADS != nil && (*newADS < 0 || *newADS > math.MaxInt32):
		return append(errs, field.Invalid(adsPath, *newADS, validation.InclusiveRangeError(0, math.MaxInt32)))
	case newADS != nil && oldADS != nil && *newADS > *oldADS:
		return append(errs, field.Invalid(adsPath, *newADS, "must be less than or equal to previous value"))
	}

	munged := pod.Spec.DeepCopy()
	for i := range munged.Containers {
		munged.Containers[i].Image = oldPod.Spec.Containers[i].Image
	}
	for i := range munged.InitContainers {
		munged.InitContainers[i].Image = oldPod.Spec.InitContainers[i].Image
	}
	munged.ActiveDeadlineSeconds = oldPod.Spec.ActiveDeadlineSeconds
	munged.Tolerations = oldPod.Spec.Tolerations
	errs = append(errs, validateOnlyAddedTolerations(pod.Spec.Tolerations, oldPod.Spec.Tolerations, specPath.Child("tolerations"))...)
	munged.SchedulingGates = oldPod.Spec.SchedulingGates
	errs = append(errs, validateOnlyRemovedGates(pod.Spec.SchedulingGates, oldPod.Spec.SchedulingGates, specPath.Child("schedulingGates"))...)
	// A negative grace period (from old clients) may be fixed to 1.
	if n, o := pod.Spec.TerminationGracePeriodSeconds, oldPod.Spec.TerminationGracePeriodSeconds; n != nil && *n == 1 && o != nil && *o < 0 {
		munged.TerminationGracePeriodSeconds = o
	}
	if !apiequality.Semantic.DeepEqual(*munged, oldPod.Spec) {
		errs = append(errs, field.Forbidden(specPath, fmt.Sprintf("pod updates may not change fields other than %s\n%v",
			strings.Join(updatablePodSpecFields, ","), diff.Diff(oldPod.Spec, *munged))))
	}
	return errs
}

func validateOnlyAddedTolerations(newTs, oldTs []corev1.Toleration, p *field.Path) field.ErrorList {
	for _, old := range oldTs {
		found := slices.ContainsFunc(newTs, func(t corev1.Toleration) bool {
			// Only tolerationSeconds of an existing toleration may change.
			o := old
			o.TolerationSeconds = t.TolerationSeconds
			return apiequality.Semantic.DeepEqual(o, t)
		})
		if !found {
			return field.ErrorList{field.Forbidden(p, "existing toleration can not be modified except its tolerationSeconds")}
		}
	}
	return nil
}

func validateOnlyRemovedGates(newGates, oldGates []corev1.PodSchedulingGate, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, g := range newGates {
		if !slices.Contains(oldGates, g) {
			errs = append(errs, field.Forbidden(p, fmt.Sprintf("only deletion is allowed, but found new scheduling gate '%s'", g.Name)))
		}
	}
	return errs
}

// ---- Pod templates and workloads ----

func validatePodTemplateSpec(t *corev1.PodTemplateSpec, p *field.Path) field.ErrorList {
	errs := metav1validation.ValidateLabels(t.Labels, p.Child("labels"))
	errs = append(errs, apivalidation.ValidateAnnotations(t.Annotations, p.Child("annotations"))...)
	errs = append(errs, validatePodSpec(&t.Spec, p.Child("spec"))...)
	if len(t.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(p.Child("spec", "ephemeralContainers"), "ephemeral containers not allowed in pod template"))
	}
	return errs
}

// validateReplicatedTemplate checks the template of a controller that keeps
// pods running (RC, ReplicaSet, Deployment): it must produce pods its
// selector selects, and those pods must restart forever.
func validateReplicatedTemplate(t *corev1.PodTemplateSpec, selector labels.Selector, kind string, p *field.Path) field.ErrorList {
	if t == nil {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	if !selector.Empty() && !selector.Matches(labels.Set(t.Labels)) {
		errs = append(errs, field.Invalid(p.Child("metadata", "labels"), t.Labels, "`selector` does not match template `labels`"))
	}
	errs = append(errs, validatePodTemplateSpec(t, p)...)
	if t.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(p.Child("spec", "restartPolicy"), t.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(p.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in "+kind+" is not Supported"))
	}
	return errs
}

// validateSelectorAndTemplate: the apps/v1 rule that a selector is required,
// non-empty, and matches the template.
func validateSelectorAndTemplate(sel *metav1.LabelSelector, t *corev1.PodTemplateSpec, specPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	selPath := specPath.Child("selector")
	if sel == nil {
		errs = append(errs, field.Required(selPath, ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, selPath)...)
		if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
			errs = append(errs, field.Invalid(selPath, sel, "empty selector is invalid for deployment"))
		}
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return append(errs, field.Invalid(selPath, sel, "invalid label selector"))
	}
	// Upstream names ReplicaSet here for Deployments too.
	return append(errs, validateReplicatedTemplate(t, selector, "ReplicaSet", specPath.Child("template"))...)
}

func validateReplicationController(obj runtime.Object) field.ErrorList {
	rc := obj.(*corev1.ReplicationController)
	p := field.NewPath("spec")
	errs := nonNegative(&rc.Spec.MinReadySeconds, p.Child("minReadySeconds"))
	errs = append(errs, nonNegative(rc.Spec.Replicas, p.Child("replicas"))...)
	if len(rc.Spec.Selector) == 0 {
		errs = append(errs, field.Required(p.Child("selector"), ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabels(rc.Spec.Selector, p.Child("selector"))...)
	}
	return append(errs, validateReplicatedTemplate(rc.Spec.Template, labels.SelectorFromSet(rc.Spec.Selector), "ReplicationController", p.Child("template"))...)
}

func validateReplicaSet(obj runtime.Object) field.ErrorList {
	rs := obj.(*appsv1.ReplicaSet)
	p := field.NewPath("spec")
	errs := nonNegative(rs.Spec.Replicas, p.Child("replicas"))
	errs = append(errs, nonNegative(&rs.Spec.MinReadySeconds, p.Child("minReadySeconds"))...)
	return append(errs, validateSelectorAndTemplate(rs.Spec.Selector, &rs.Spec.Template, p)...)
}

func validateReplicaSetUpdate(obj, old runtime.Object) field.ErrorList {
	return immutable(obj.(*appsv1.ReplicaSet).Spec.Selector, old.(*appsv1.ReplicaSet).Spec.Selector, field.NewPath("spec", "selector"))
}

func validateDeployment(obj runtime.Object) field.ErrorList {
	d := obj.(*appsv1.Deployment)
	p := field.NewPath("spec")
	errs := nonNegative(d.Spec.Replicas, p.Child("replicas"))
	errs = append(errs, validateSelectorAndTemplate(d.Spec.Selector, &d.Spec.Template, p)...)
	errs = append(errs, validateDeploymentStrategy(&d.Spec.Strategy, p.Child("strategy"))...)
	errs = append(errs, nonNegative(&d.Spec.MinReadySeconds, p.Child("minReadySeconds"))...)
	errs = append(errs, nonNegative(d.Spec.RevisionHistoryLimit, p.Child("revisionHistoryLimit"))...)
	if pds := d.Spec.ProgressDeadlineSeconds; pds != nil {
		pp := p.Child("progressDeadlineSeconds")
		errs = append(errs, positive(int64(*pds), pp)...)
		if *pds <= d.Spec.MinReadySeconds {
			errs = append(errs, field.Invalid(pp, *pds, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

func validateDeploymentStrategy(s *appsv1.DeploymentStrategy, p *field.Path) field.ErrorList {
	switch s.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.RollingUpdate != nil {
			return field.ErrorList{field.Forbidden(p.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")}
		}
		return nil
	case appsv1.RollingUpdateDeploymentStrategyType:
		ru, rp := s.RollingUpdate, p.Child("rollingUpdate")
		if ru == nil {
			return field.ErrorList{field.Required(rp, "this should be defaulted and never be nil")}
		}
		var errs field.ErrorList
		errs = append(errs, intOrPercent(ru.MaxUnavailable, rp.Child("maxUnavailable"))...)
		errs = append(errs, intOrPercent(ru.MaxSurge, rp.Child("maxSurge"))...)
		if intOrPercentValue(ru.MaxUnavailable) == 0 && intOrPercentValue(ru.MaxSurge) == 0 {
			// Neither may a pod go down nor an extra come up: no progress possible.
			errs = append(errs, field.Invalid(rp.Child("maxUnavailable"), ru.MaxUnavailable, "may not be 0 when `maxSurge` is 0"))
		}
		if v := ru.MaxUnavailable; v != nil && v.Type == intstr.String && intOrPercentValue(v) > 100 {
			errs = append(errs, field.Invalid(rp.Child("maxUnavailable"), v, "must not be greater than 100%"))
		}
		return errs
	}
	return field.ErrorList{field.NotSupported(p.Child("type"), s.Type,
		[]appsv1.DeploymentStrategyType{appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType})}
}

func intOrPercent(v *intstr.IntOrString, p *field.Path) field.ErrorList {
	switch {
	case v == nil:
		return nil
	case v.Type == intstr.String:
		return messages(p, *v, validation.IsValidPercent(v.StrVal))
	}
	return apivalidation.ValidateNonnegativeField(int64(v.IntValue()), p)
}

// intOrPercentValue is the number or percentage, -1 when not a valid one.
func intOrPercentValue(v *intstr.IntOrString) int {
	if v == nil {
		return 0
	}
	if v.Type == intstr.Int {
		return v.IntValue()
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
	if err != nil || !strings.HasSuffix(v.StrVal, "%") {
		return -1
	}
	return n
}

func validateDeploymentUpdate(obj, old runtime.Object) field.ErrorList {
	return immutable(obj.(*appsv1.Deployment).Spec.Selector, old.(*appsv1.Deployment).Spec.Selector, field.NewPath("spec", "selector"))
}

// ---- Jobs and CronJobs ----

// maxParallelismForIndexedJob bounds the per-index bookkeeping of Indexed jobs.
const maxParallelismForIndexedJob = 100000

func validateJob(obj runtime.Object) field.ErrorList {
	job := obj.(*batchv1.Job)
	specPath := field.NewPath("spec")
	errs := validateGeneratedSelector(job)
	errs = append(errs, validateJobSpec(&job.Spec, specPath)...)
	if job.Spec.Selector == nil {
		errs = append(errs, field.Required(specPath.Child("selector"), ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(job.Spec.Selector, metav1validation.LabelSelectorValidationOptions{}, specPath.Child("selector"))...)
	}
	// Generated or manual, the selector must select the job's own pods.
	if selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector); err == nil && !selector.Matches(labels.Set(job.Spec.Template.Labels)) {
		errs = append(errs, field.Invalid(specPath.Child("template", "metadata", "labels"), job.Spec.Template.Labels, "`selector` does not match template `labels`"))
	}
	return errs
}

// validateGeneratedSelector: without manualSelector the selector and pod
// labels are the ones prepareJobForCreate generated; a user-written selector
// needs manualSelector: true.
func validateGeneratedSelector(job *batchv1.Job) field.ErrorList {
	if (job.Spec.ManualSelector != nil && *job.Spec.ManualSelector) || job.Spec.Template.Labels == nil {
		return nil
	}
	var errs field.ErrorList
	metaPath := field.NewPath("spec", "template", "metadata")
	for _, want := range [][2]string{
		{legacyControllerUIDLabel, string(job.UID)},
		{legacyJobNameLabel, job.Name},
		{batchv1.ControllerUidLabel, string(job.UID)},
		{batchv1.JobNameLabel, job.Name},
	} {
		key, want := want[0], want[1]
		got, ok := job.Spec.Template.Labels[key]
		switch {
		case !ok:
			errs = append(errs, field.Required(metaPath.Child("labels").Key(key), fmt.Sprintf("must be '%s'", want)))
		case got != want:
			errs = append(errs, field.Invalid(metaPath.Child("labels").Key(key), job.Spec.Template.Labels, fmt.Sprintf("must be '%s'", want)))
		}
	}
	selPath := field.NewPath("spec", "selector")
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return append(errs, field.Invalid(selPath, job.Spec.Selector, "invalid label selector"))
	}
	if !selector.Matches(labels.Set{batchv1.ControllerUidLabel: string(job.UID)}) {
		errs = append(errs, field.Invalid(selPath, job.Spec.Selector, "`selector` not auto-generated"))
	}
	return errs
}

// validateJobSpec is shared by Jobs and CronJobs' job templates.
func validateJobSpec(spec *batchv1.JobSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, nonNegative(spec.Parallelism, p.Child("parallelism"))...)
	errs = append(errs, nonNegative(spec.Completions, p.Child("completions"))...)
	errs = append(errs, nonNegative(spec.ActiveDeadlineSeconds, p.Child("activeDeadlineSeconds"))...)
	errs = append(errs, nonNegative(spec.BackoffLimit, p.Child("backoffLimit"))...)
	errs = append(errs, nonNegative(spec.TTLSecondsAfterFinished, p.Child("ttlSecondsAfterFinished"))...)
	indexed := spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion
	if spec.BackoffLimitPerIndex != nil {
		errs = append(errs, nonNegative(spec.BackoffLimitPerIndex, p.Child("backoffLimitPerIndex"))...)
		if !indexed {
			errs = append(errs, field.Forbidden(p.Child("backoffLimitPerIndex"), "requires indexed completion mode"))
		}
	}
	if spec.MaxFailedIndexes != nil {
		errs = append(errs, nonNegative(spec.MaxFailedIndexes, p.Child("maxFailedIndexes"))...)
		if spec.BackoffLimitPerIndex == nil {
			errs = append(errs, field.Required(p.Child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
		}
	}
	if spec.CompletionMode != nil {
		errs = append(errs, oneOf(*spec.CompletionMode,
			[]batchv1.CompletionMode{batchv1.NonIndexedCompletion, batchv1.IndexedCompletion}, p.Child("completionMode"))...)
	}
	if indexed {
		if spec.Completions == nil {
			errs = append(errs, field.Required(p.Child("completions"), "when completion mode is Indexed"))
		}
		if spec.Parallelism != nil && *spec.Parallelism > maxParallelismForIndexedJob {
			errs = append(errs, field.Invalid(p.Child("parallelism"), *spec.Parallelism,
				fmt.Sprintf("must be less than or equal to %d when completion mode is Indexed", maxParallelismForIndexedJob)))
		}
	}
	if rp := spec.PodReplacementPolicy; rp != nil {
		if spec.PodFailurePolicy != nil && *rp != batchv1.Failed {
			errs = append(errs, field.NotSupported(p.Child("podReplacementPolicy"), *rp, []batchv1.PodReplacementPolicy{batchv1.Failed}))
		} else {
			errs = append(errs, oneOf(*rp, []batchv1.PodReplacementPolicy{batchv1.Failed, batchv1.TerminatingOrFailed}, p.Child("podReplacementPolicy"))...)
		}
	}
	errs = append(errs, validatePodTemplateSpec(&spec.Template, p.Child("template"))...)
	// A job's pods run to completion.
	rpPath := p.Child("template", "spec", "restartPolicy")
	switch rp := spec.Template.Spec.RestartPolicy; {
	case rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever:
		errs = append(errs, field.NotSupported(rpPath, rp, []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	case rp == corev1.RestartPolicyOnFailure && spec.PodFailurePolicy != nil:
		errs = append(errs, field.Invalid(rpPath, rp, `only "Never" is supported when podFailurePolicy is specified`))
	}
	return errs
}

// validateJobUpdate: what a job runs and which pods it owns are fixed.
func validateJobUpdate(obj, old runtime.Object) field.ErrorList {
	spec, oldSpec := &obj.(*batchv1.Job).Spec, &withDefaults(Jobs, old).(*batchv1.Job).Spec
	p := field.NewPath("spec")
	errs := immutable(spec.Selector, oldSpec.Selector, p.Child("selector"))
	errs = append(errs, immutable(spec.Template, oldSpec.Template, p.Child("template"))...)
	errs = append(errs, immutable(spec.CompletionMode, oldSpec.CompletionMode, p.Child("completionMode"))...)
	errs = append(errs, immutable(spec.PodFailurePolicy, oldSpec.PodFailurePolicy, p.Child("podFailurePolicy"))...)
	errs = append(errs, immutable(spec.BackoffLimitPerIndex, oldSpec.BackoffLimitPerIndex, p.Child("backoffLimitPerIndex"))...)
	errs = append(errs, immutable(spec.ManagedBy, oldSpec.ManagedBy, p.Child("managedBy"))...)
	errs = append(errs, immutable(spec.SuccessPolicy, oldSpec.SuccessPolicy, p.Child("successPolicy"))...)
	errs = append(errs, immutable(spec.PodReplacementPolicy, oldSpec.PodReplacementPolicy, p.Child("podReplacementPolicy"))...)
	// An Indexed job may scale (elastic indexed jobs) by changing completions
	// and parallelism together; otherwise completions is fixed.
	cp := p.Child("completions")
	indexed := spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion
	switch {
	case !indexed:
		errs = append(errs, immutable(spec.Completions, oldSpec.Completions, cp)...)
	case apiequality.Semantic.DeepEqual(spec.Completions, oldSpec.Completions) || spec.Completions == nil:
	case spec.Parallelism == nil || *spec.Completions != *spec.Parallelism:
		errs = append(errs, field.Invalid(cp, spec.Completions, "can only be modified in tandem with spec.parallelism"))
	}
	return errs
}

// CronJob names leave room for the 11-character suffix of the jobs they make.
const maxCronJobNameLength = 52

func validateCronJob(obj runtime.Object) field.ErrorList {
	cj := obj.(*batchv1.CronJob)
	var errs field.ErrorList
	if len(cj.Name) > maxCronJobNameLength {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), cj.Name, fmt.Sprintf("must be no more than %d characters", maxCronJobNameLength)))
	}
	p := field.NewPath("spec")
	if sp := p.Child("schedule"); cj.Spec.Schedule == "" {
		errs = append(errs, field.Required(sp, ""))
	} else {
		if err := parseCronSchedule(cj.Spec.Schedule); err != nil {
			errs = append(errs, field.Invalid(sp, cj.Spec.Schedule, err.Error()))
		}
		if strings.Contains(cj.Spec.Schedule, "TZ") {
			errs = append(errs, field.Invalid(sp, cj.Spec.Schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
		}
	}
	errs = append(errs, nonNegative(cj.Spec.StartingDeadlineSeconds, p.Child("startingDeadlineSeconds"))...)
	if tz := cj.Spec.TimeZone; tz != nil {
		errs = append(errs, validateTimeZone(*tz, p.Child("timeZone"))...)
	}
	errs = append(errs, oneOf(cj.Spec.ConcurrencyPolicy,
		[]batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}, p.Child("concurrencyPolicy"))...)
	jp := p.Child("jobTemplate", "spec")
	jspec := &cj.Spec.JobTemplate.Spec
	errs = append(errs, validateJobSpec(jspec, jp)...)
	// Each job the CronJob makes gets its own generated selector.
	if jspec.Selector != nil {
		errs = append(errs, field.Invalid(jp.Child("selector"), jspec.Selector, "`selector` will be auto-generated"))
	}
	if jspec.ManualSelector != nil && *jspec.ManualSelector {
		errs = append(errs, field.NotSupported(jp.Child("manualSelector"), jspec.ManualSelector, []string{"nil", "false"}))
	}
	errs = append(errs, nonNegative(cj.Spec.SuccessfulJobsHistoryLimit, p.Child("successfulJobsHistoryLimit"))...)
	errs = append(errs, nonNegative(cj.Spec.FailedJobsHistoryLimit, p.Child("failedJobsHistoryLimit"))...)
	return errs
}

// validateTimeZone checks that an IANA zone name is well formed and exists.
func validateTimeZone(tz string, p *field.Path) field.ErrorList {
	if tz == "" {
		return field.ErrorList{field.Invalid(p, tz, "timeZone must be nil or non-empty string")}
	}
	for _, part := range strings.Split(tz, "/") {
		valid := part != "" && part != "." && part != ".." && !strings.HasPrefix(part, "-") && len(part) <= 14 &&
			strings.IndexFunc(part, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_+", r))
			}) < 0
		if !valid {
			return field.ErrorList{field.Invalid(p, tz, "unknown time zone "+tz)}
		}
	}
	if strings.EqualFold(tz, "Local") {
		return field.ErrorList{field.Invalid(p, tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")}
	}
	// The zone database is embedded (time/tzdata), so this answers the same on every host.
	if _, err := time.LoadLocation(tz); err != nil {
		return field.ErrorList{field.Invalid(p, tz, err.Error())}
	}
	return nil
}

// ---- Cron schedules ----

// parseCronSchedule accepts exactly what the CronJob controller will run, by
// using the same parser (robfig/cron's standard one, as upstream does): five
// fields, or a descriptor such as @daily or @every 1h. A TZ= prefix parses
// here; validateCronJob rejects it for the timeZone field.
func parseCronSchedule(spec string) error {
	_, err := cron.ParseStandard(spec)
	return err
}

// ---- Services ----

var (
	serviceTypes = []corev1.ServiceType{corev1.ServiceTypeClusterIP, corev1.ServiceTypeExternalName,
		corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort}
	sessionAffinities          = []corev1.ServiceAffinity{corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone}
	externalTrafficPolicies    = []corev1.ServiceExternalTrafficPolicy{corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal}
	internalTrafficPolicies    = []corev1.ServiceInternalTrafficPolicy{corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal}
	ipFamilyPolicies           = []corev1.IPFamilyPolicy{corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack, corev1.IPFamilyPolicySingleStack}
	ipFamilies                 = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	maxClientIPAffinitySeconds = int32(86400)
)

// headless: no cluster IP, so DNS names the endpoints directly.
func headless(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP == corev1.ClusterIPNone ||
		(len(svc.Spec.ClusterIPs) > 0 && svc.Spec.ClusterIPs[0] == corev1.ClusterIPNone)
}

func validateService(obj runtime.Object) field.ErrorList {
	svc := obj.(*corev1.Service)
	spec, p := &svc.Spec, field.NewPath("spec")
	var errs field.ErrorList
	if len(spec.Ports) == 0 && !headless(svc) && spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(p.Child("ports"), ""))
	}
	switch spec.Type {
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
		if headless(svc) {
			errs = append(errs, field.Invalid(p.Child("clusterIPs").Index(0), corev1.ClusterIPNone,
				fmt.Sprintf("may not be set to 'None' for %s services", spec.Type)))
		}
		if spec.Type == corev1.ServiceTypeLoadBalancer {
			for i, port := range spec.Ports {
				// Clouds that over-open firewalls would expose the kubelet.
				if port.Port == 10250 {
					errs = append(errs, field.Invalid(p.Child("ports").Index(i), port.Port, "may not expose port 10250 externally since it is used by kubelet"))
				}
			}
		}
	case corev1.ServiceTypeExternalName:
		if spec.ClusterIP != "" || len(spec.ClusterIPs) > 0 {
			errs = append(errs, field.Forbidden(p.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		if len(spec.IPFamilies) > 0 {
			errs = append(errs, field.Forbidden(p.Child("ipFamilies"), "may not be set for ExternalName services"))
		}
		if spec.IPFamilyPolicy != nil {
			errs = append(errs, field.Forbidden(p.Child("ipFamilyPolicy"), "may not be set for ExternalName services"))
		}
		// The CNAME may end in a dot to mark it fully qualified.
		if cname := strings.TrimSuffix(spec.ExternalName, "."); cname != "" {
			errs = append(errs, dnsSubdomain(cname, p.Child("externalName"))...)
		} else {
			errs = append(errs, field.Required(p.Child("externalName"), ""))
		}
	}

	portNames := map[string]bool{}
	type protoPort struct {
		proto corev1.Protocol
		port  int32
	}
	ports, nodePorts := map[protoPort]bool{}, map[protoPort]bool{}
	for i, sp := range spec.Ports {
		pp := p.Child("ports").Index(i)
		if len(spec.Ports) > 1 && sp.Name == "" {
			errs = append(errs, field.Required(pp.Child("name"), ""))
		} else if sp.Name != "" {
			errs = append(errs, dnsLabel(sp.Name, pp.Child("name"))...)
			if portNames[sp.Name] {
				errs = append(errs, field.Duplicate(pp.Child("name"), sp.Name))
			}
			portNames[sp.Name] = true
		}
		errs = append(errs, portNum(sp.Port, pp.Child("port"))...)
		errs = append(errs, oneOf(sp.Protocol, protocols, pp.Child("protocol"))...)
		errs = append(errs, portNumOrName(sp.TargetPort, pp.Child("targetPort"))...)
		if sp.AppProtocol != nil {
			errs = append(errs, qualifiedName(*sp.AppProtocol, pp.Child("appProtocol"))...)
		}
		if sp.NodePort != 0 && spec.Type == corev1.ServiceTypeClusterIP {
			errs = append(errs, field.Forbidden(pp.Child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
		}
		if key := (protoPort{sp.Protocol, sp.Port}); ports[key] {
			errs = append(errs, field.Duplicate(pp, corev1.ServicePort{Protocol: sp.Protocol, Port: sp.Port}))
		} else {
			ports[key] = true
		}
		if sp.NodePort != 0 {
			if key := (protoPort{sp.Protocol, sp.NodePort}); nodePorts[key] {
				errs = append(errs, field.Duplicate(pp.Child("nodePort"), sp.NodePort))
			} else {
				nodePorts[key] = true
			}
		}
	}

	errs = append(errs, metav1validation.ValidateLabels(spec.Selector, p.Child("selector"))...)
	errs = append(errs, oneOf(spec.SessionAffinity, sessionAffinities, p.Child("sessionAffinity"))...)
	switch spec.SessionAffinity {
	case corev1.ServiceAffinityClientIP:
		cp := p.Child("sessionAffinityConfig")
		if c := spec.SessionAffinityConfig; c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
			errs = append(errs, field.Required(cp, "when session affinity type is ClientIP"))
		} else if t := *c.ClientIP.TimeoutSeconds; t <= 0 || t > maxClientIPAffinitySeconds {
			errs = append(errs, field.Invalid(cp.Child("clientIP", "timeoutSeconds"), t,
				fmt.Sprintf("must be greater than 0 and less than %d", maxClientIPAffinitySeconds)))
		}
	case corev1.ServiceAffinityNone:
		if spec.SessionAffinityConfig != nil {
			errs = append(errs, field.Forbidden(p.Child("sessionAffinityConfig"), "must not be set when session affinity is None"))
		}
	}
	// Allocation checks the range; this checks the form, of what a client set.
	for i, ip := range spec.ClusterIPs {
		if i > 0 || ip != corev1.ClusterIPNone {
			errs = append(errs, validation.IsValidIPForLegacyField(p.Child("clusterIPs").Index(i), ip, false, nil)...)
		}
	}
	if ip := spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone && (len(spec.ClusterIPs) == 0 || spec.ClusterIPs[0] != ip) {
		errs = append(errs, validation.IsValidIPForLegacyField(p.Child("clusterIP"), ip, false, nil)...)
	}
	if spec.IPFamilyPolicy != nil {
		errs = append(errs, oneOf(*spec.IPFamilyPolicy, ipFamilyPolicies, p.Child("ipFamilyPolicy"))...)
	}
	for i, f := range spec.IPFamilies {
		errs = append(errs, oneOf(f, ipFamilies, p.Child("ipFamilies").Index(i))...)
	}
	for i, ip := range spec.ExternalIPs {
		ipp := p.Child("externalIPs").Index(i)
		if ipErrs := validation.IsValidIPForLegacyField(ipp, ip, false, nil); len(ipErrs) > 0 {
			errs = append(errs, ipErrs...)
		} else {
			errs = append(errs, validateEndpointIP(ip, ipp)...)
		}
	}
	errs = append(errs, oneOf(spec.Type, serviceTypes, p.Child("type"))...)

	etp := p.Child("externalTrafficPolicy")
	if !externallyAccessible(svc) {
		if spec.ExternalTrafficPolicy != "" {
			errs = append(errs, field.Invalid(etp, spec.ExternalTrafficPolicy, "may only be set for externally-accessible services"))
		}
	} else {
		errs = append(errs, oneOf(spec.ExternalTrafficPolicy, externalTrafficPolicies, etp)...)
	}
	needsHealthCheck := spec.Type == corev1.ServiceTypeLoadBalancer && spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	if !needsHealthCheck && spec.HealthCheckNodePort != 0 {
		errs = append(errs, field.Invalid(p.Child("healthCheckNodePort"), spec.HealthCheckNodePort,
			"may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
	}
	itp := p.Child("internalTrafficPolicy")
	switch {
	case spec.InternalTrafficPolicy != nil:
		errs = append(errs, oneOf(*spec.InternalTrafficPolicy, internalTrafficPolicies, itp)...)
	case spec.Type == corev1.ServiceTypeClusterIP || spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer:
		errs = append(errs, field.Required(itp, ""))
	}
	return errs
}

// validateServiceUpdate: a cluster IP, once allocated, stays. Only a change to
// or from ExternalName (which has none) may drop or gain one.
func validateServiceUpdate(obj, old runtime.Object) field.ErrorList {
	svc, oldSvc := obj.(*corev1.Service), old.(*corev1.Service)
	if svc.Spec.Type == corev1.ServiceTypeExternalName || oldSvc.Spec.Type == corev1.ServiceTypeExternalName || oldSvc.Spec.ClusterIP == "" {
		return nil
	}
	return immutable(svc.Spec.ClusterIP, oldSvc.Spec.ClusterIP, field.NewPath("spec", "clusterIP"))
}

// validateEndpointIP rejects addresses that cannot reach a pod from elsewhere
// and tend to reach node-local services instead.
func validateEndpointIP(addr string, p *field.Path) field.ErrorList {
	ip := net.ParseIP(addr)
	if ip == nil {
		return nil // malformed; reported by the format check
	}
	var errs field.ErrorList
	if ip.IsUnspecified() {
		errs = append(errs, field.Invalid(p, addr, fmt.Sprintf("may not be unspecified (%v)", addr)))
	}
	if ip.IsLoopback() {
		errs = append(errs, field.Invalid(p, addr, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
	}
	if ip.IsLinkLocalUnicast() {
		errs = append(errs, field.Invalid(p, addr, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
	}
	if ip.IsLinkLocalMulticast() {
		errs = append(errs, field.Invalid(p, addr, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
	}
	return errs
}

func validateEndpoints(obj runtime.Object) field.ErrorList {
	ep := obj.(*corev1.Endpoints)
	var errs field.ErrorList
	for i, ss := range ep.Subsets {
		sp := field.NewPath("subsets").Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(sp, "must specify `addresses` or `notReadyAddresses`"))
		}
		for _, list := range []struct {
			name  string
			addrs []corev1.EndpointAddress
		}{{"addresses", ss.Addresses}, {"notReadyAddresses", ss.NotReadyAddresses}} {
			for j, a := range list.addrs {
				ap := sp.Child(list.name).Index(j)
				if ipErrs := validation.IsValidIPForLegacyField(ap.Child("ip"), a.IP, false, nil); len(ipErrs) > 0 {
					errs = append(errs, ipErrs...)
				} else {
					errs = append(errs, validateEndpointIP(a.IP, ap.Child("ip"))...)
				}
				if a.Hostname != "" {
					errs = append(errs, dnsLabel(a.Hostname, ap.Child("hostname"))...)
				}
				if a.NodeName != nil {
					errs = append(errs, dnsSubdomain(*a.NodeName, ap.Child("nodeName"))...)
				}
			}
		}
		for j, port := range ss.Ports {
			pp := sp.Child("ports").Index(j)
			if len(ss.Ports) > 1 && port.Name == "" {
				errs = append(errs, field.Required(pp.Child("name"), ""))
			} else if port.Name != "" {
				errs = append(errs, dnsLabel(port.Name, pp.Child("name"))...)
			}
			errs = append(errs, portNum(port.Port, pp.Child("port"))...)
			errs = append(errs, oneOf(port.Protocol, protocols, pp.Child("protocol"))...)
			if port.AppProtocol != nil {
				errs = append(errs, qualifiedName(*port.AppProtocol, pp.Child("appProtocol"))...)
			}
		}
	}
	return errs
}

const (
	maxSliceEndpoints = 1000
	maxSliceAddresses = 100
	maxSlicePorts     = 20000
)

var addressTypes = []discoveryv1.AddressType{discoveryv1.AddressTypeFQDN, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6}

func validateEndpointSlice(obj runtime.Object) field.ErrorList {
	es := obj.(*discoveryv1.EndpointSlice)
	errs := oneOf(es.AddressType, addressTypes, field.NewPath("addressType"))
	ep := field.NewPath("endpoints")
	if len(es.Endpoints) > maxSliceEndpoints {
		errs = append(errs, field.TooMany(ep, len(es.Endpoints), maxSliceEndpoints))
	} else {
		for i, e := range es.Endpoints {
			errs = append(errs, validateSliceEndpoint(e, es.AddressType, ep.Index(i))...)
		}
	}
	pp := field.NewPath("ports")
	if len(es.Ports) > maxSlicePorts {
		return append(errs, field.TooMany(pp, len(es.Ports), maxSlicePorts))
	}
	names := map[string]bool{}
	for i, port := range es.Ports {
		ip := pp.Index(i)
		name := ""
		if port.Name != nil {
			name = *port.Name
		}
		if name != "" {
			errs = append(errs, dnsLabel(name, ip.Child("name"))...)
		}
		if names[name] {
			errs = append(errs, field.Duplicate(ip.Child("name"), name))
		}
		names[name] = true
		if port.Protocol == nil {
			errs = append(errs, field.Required(ip.Child("protocol"), ""))
		} else {
			errs = append(errs, oneOf(*port.Protocol, protocols, ip.Child("protocol"))...)
		}
		if port.Port != nil {
			errs = append(errs, portNum(*port.Port, ip.Child("port"))...)
		}
		if port.AppProtocol != nil {
			errs = append(errs, qualifiedName(*port.AppProtocol, ip.Child("appProtocol"))...)
		}
	}
	return errs
}

func validateSliceEndpoint(e discoveryv1.Endpoint, addrType discoveryv1.AddressType, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	ap := p.Child("addresses")
	switch n := len(e.Addresses); {
	case n == 0:
		errs = append(errs, field.Required(ap, "must contain at least 1 address"))
	case n > maxSliceAddresses:
		errs = append(errs, field.TooMany(ap, n, maxSliceAddresses))
	}
	for i, addr := range e.Addresses {
		aip := ap.Index(i)
		switch addrType {
		case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
			ip := net.ParseIP(addr)
			want := map[discoveryv1.AddressType]int{discoveryv1.AddressTypeIPv4: 4, discoveryv1.AddressTypeIPv6: 6}[addrType]
			if ipErrs := validation.IsValidIPForLegacyField(aip, addr, false, nil); len(ipErrs) > 0 {
				errs = append(errs, ipErrs...)
			} else if ipFamilyOf(ip) != want {
				errs = append(errs, field.Invalid(aip, addr, fmt.Sprintf("must be a valid IPv%d address", want)))
			} else {
				errs = append(errs, validateEndpointIP(addr, aip)...)
			}
		case discoveryv1.AddressTypeFQDN:
			errs = append(errs, validation.IsFullyQualifiedDomainName(aip, addr)...)
		}
	}
	if e.NodeName != nil {
		errs = append(errs, dnsSubdomain(*e.NodeName, p.Child("nodeName"))...)
	}
	if e.Hostname != nil {
		errs = append(errs, dnsLabel(*e.Hostname, p.Child("hostname"))...)
	}
	errs = append(errs, metav1validation.ValidateLabels(e.DeprecatedTopology, p.Child("deprecatedTopology"))...)
	return errs
}

func validateEndpointSliceUpdate(obj, old runtime.Object) field.ErrorList {
	return immutable(obj.(*discoveryv1.EndpointSlice).AddressType, old.(*discoveryv1.EndpointSlice).AddressType, field.NewPath("addressType"))
}

// ---- Ingress ----

var (
	pathTypes = []networkingv1.PathType{networkingv1.PathTypeExact, networkingv1.PathTypeImplementationSpecific, networkingv1.PathTypePrefix}
	// Sequences a proxy could resolve differently than the controller did.
	invalidPathSequences = []string{"//", "/./", "/../", "%2f", "%2F"}
	invalidPathSuffixes  = []string{"/..", "/."}
)

func validateIngress(obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*networkingv1.Ingress).Spec, field.NewPath("spec")
	var errs field.ErrorList
	if len(spec.Rules) == 0 && spec.DefaultBackend == nil {
		errs = append(errs, field.Invalid(p, spec.Rules, "either `defaultBackend` or `rules` must be specified"))
	}
	if spec.DefaultBackend != nil {
		errs = append(errs, validateIngressBackend(spec.DefaultBackend, p.Child("defaultBackend"))...)
	}
	for i, rule := range spec.Rules {
		rp := p.Child("rules").Index(i)
		if h := rule.Host; h != "" {
			if net.ParseIP(h) != nil {
				errs = append(errs, field.Invalid(rp.Child("host"), h, "must be a DNS name, not an IP address"))
			}
			if strings.Contains(h, "*") {
				errs = append(errs, messages(rp.Child("host"), h, validation.IsWildcardDNS1123Subdomain(h))...)
			} else {
				errs = append(errs, dnsSubdomain(h, rp.Child("host"))...)
			}
		}
		if rule.HTTP == nil {
			continue
		}
		hp := rp.Child("http")
		if len(rule.HTTP.Paths) == 0 {
			errs = append(errs, field.Required(hp.Child("paths"), ""))
		}
		for j := range rule.HTTP.Paths {
			errs = append(errs, validateIngressPath(&rule.HTTP.Paths[j], hp.Child("paths").Index(j))...)
		}
	}
	for i, tls := range spec.TLS {
		tp := p.Child("tls").Index(i)
		for j, h := range tls.Hosts {
			if strings.Contains(h, "*") {
				errs = append(errs, messages(tp.Child("hosts").Index(j), h, validation.IsWildcardDNS1123Subdomain(h))...)
			} else {
				errs = append(errs, dnsSubdomain(h, tp.Child("hosts").Index(j))...)
			}
		}
		if tls.SecretName != "" {
			errs = append(errs, dnsSubdomain(tls.SecretName, tp.Child("secretName"))...)
		}
	}
	if c := spec.IngressClassName; c != nil && *c != "" {
		errs = append(errs, dnsSubdomain(*c, p.Child("ingressClassName"))...)
	}
	return errs
}

func validateIngressPath(hp *networkingv1.HTTPIngressPath, p *field.Path) field.ErrorList {
	if hp.PathType == nil {
		return field.ErrorList{field.Required(p.Child("pathType"), "pathType must be specified")}
	}
	var errs field.ErrorList
	pp := p.Child("path")
	switch *hp.PathType {
	case networkingv1.PathTypeExact, networkingv1.PathTypePrefix:
		if !strings.HasPrefix(hp.Path, "/") {
			errs = append(errs, field.Invalid(pp, hp.Path, "must be an absolute path"))
		}
		for _, seq := range invalidPathSequences {
			if strings.Contains(hp.Path, seq) {
				errs = append(errs, field.Invalid(pp, hp.Path, fmt.Sprintf("must not contain '%s'", seq)))
			}
		}
		for _, suffix := range invalidPathSuffixes {
			if strings.HasSuffix(hp.Path, suffix) {
				errs = append(errs, field.Invalid(pp, hp.Path, fmt.Sprintf("cannot end with '%s'", suffix)))
			}
		}
	case networkingv1.PathTypeImplementationSpecific:
		if hp.Path != "" && !strings.HasPrefix(hp.Path, "/") {
			errs = append(errs, field.Invalid(pp, hp.Path, "must be an absolute path"))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("pathType"), *hp.PathType, pathTypes))
	}
	return append(errs, validateIngressBackend(&hp.Backend, p.Child("backend"))...)
}

func validateIngressBackend(b *networkingv1.IngressBackend, p *field.Path) field.ErrorList {
	switch {
	case b.Resource != nil && b.Service != nil:
		return field.ErrorList{field.Invalid(p, "", "cannot set both resource and service backends")}
	case b.Resource != nil:
		r := b.Resource
		return validateTypedReference(r.APIGroup, r.Kind, r.Name, p.Child("resource"))
	case b.Service == nil:
		return field.ErrorList{field.Invalid(p, "", "resource or service backend is required")}
	}
	var errs field.ErrorList
	svc := b.Service
	if svc.Name == "" {
		errs = append(errs, field.Required(p.Child("service", "name"), ""))
	} else {
		// Service names are DNS-1035 labels: they must start with a letter.
		errs = append(errs, messages(p.Child("service", "name"), svc.Name, validation.IsDNS1035Label(svc.Name))...)
	}
	switch hasName, hasNumber := svc.Port.Name != "", svc.Port.Number != 0; {
	case hasName && hasNumber:
		errs = append(errs, field.Invalid(p, "", "cannot set both port name & port number"))
	case hasName:
		errs = append(errs, messages(p.Child("service", "port", "name"), svc.Port.Name, validation.IsValidPortName(svc.Port.Name))...)
	case hasNumber:
		errs = append(errs, portNum(svc.Port.Number, p.Child("service", "port", "number"))...)
	default:
		errs = append(errs, field.Required(p, "port name or number is required"))
	}
	return errs
}

// validateTypedReference: a reference to any resource, by group, kind and name.
func validateTypedReference(group *string, kind, name string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if group != nil {
		errs = append(errs, dnsSubdomain(*group, p.Child("apiGroup"))...)
	}
	for _, f := range []struct{ name, value string }{{"kind", kind}, {"name", name}} {
		fp := p.Child(f.name)
		if f.value == "" {
			errs = append(errs, field.Required(fp, f.name+" is required"))
		} else {
			errs = append(errs, messages(fp, f.value, pathvalidation.IsValidPathSegmentName(f.value))...)
		}
	}
	return errs
}

var ingressClassScopes = []string{networkingv1.IngressClassParametersReferenceScopeCluster, networkingv1.IngressClassParametersReferenceScopeNamespace}

func validateIngressClass(obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*networkingv1.IngressClass).Spec, field.NewPath("spec")
	var errs field.ErrorList
	if len(spec.Controller) > 250 {
		errs = append(errs, field.TooLong(p.Child("controller"), spec.Controller, 250))
	}
	errs = append(errs, validation.IsDomainPrefixedPath(p.Child("controller"), spec.Controller)...)
	params := spec.Parameters
	if params == nil {
		return errs
	}
	pp := p.Child("parameters")
	errs = append(errs, validateTypedReference(params.APIGroup, params.Kind, params.Name, pp)...)
	if params.Scope == nil {
		return append(errs, field.Required(pp.Child("scope"), ""))
	}
	switch *params.Scope {
	case networkingv1.IngressClassParametersReferenceScopeNamespace:
		if params.Namespace == nil {
			errs = append(errs, field.Required(pp.Child("namespace"), "`parameters.scope` is set to 'Namespace'"))
		} else {
			errs = append(errs, dnsLabel(*params.Namespace, pp.Child("namespace"))...)
		}
	case networkingv1.IngressClassParametersReferenceScopeCluster:
		if params.Namespace != nil {
			errs = append(errs, field.Forbidden(pp.Child("namespace"), "`parameters.scope` is set to 'Cluster'"))
		}
	default:
		errs = append(errs, field.NotSupported(pp.Child("scope"), *params.Scope, ingressClassScopes))
	}
	return errs
}

func validateIngressClassUpdate(obj, old runtime.Object) field.ErrorList {
	return immutable(obj.(*networkingv1.IngressClass).Spec.Controller, old.(*networkingv1.IngressClass).Spec.Controller,
		field.NewPath("spec", "controller"))
}

// ---- ConfigMaps and Secrets ----

const immutableMsg = "field is immutable when `immutable` is set"

func validateConfigMap(obj runtime.Object) field.ErrorList {
	cm := obj.(*corev1.ConfigMap)
	var errs field.ErrorList
	size := 0
	for _, key := range slices.Sorted(maps.Keys(cm.Data)) {
		kp := field.NewPath("data").Key(key)
		errs = append(errs, messages(kp, key, validation.IsConfigMapKey(key))...)
		if _, dup := cm.BinaryData[key]; dup {
			errs = append(errs, field.Invalid(kp, key, "duplicate of key present in binaryData"))
		}
		size += len(cm.Data[key])
	}
	for _, key := range slices.Sorted(maps.Keys(cm.BinaryData)) {
		errs = append(errs, messages(field.NewPath("binaryData").Key(key), key, validation.IsConfigMapKey(key))...)
		size += len(cm.BinaryData[key])
	}
	if size > corev1.MaxSecretSize {
		// An empty path: the error is about the whole object.
		errs = append(errs, field.TooLong(field.NewPath(""), cm, corev1.MaxSecretSize))
	}
	return errs
}

func validateConfigMapUpdate(obj, old runtime.Object) field.ErrorList {
	cm, oldCM := obj.(*corev1.ConfigMap), old.(*corev1.ConfigMap)
	if oldCM.Immutable == nil || !*oldCM.Immutable {
		return nil
	}
	var errs field.ErrorList
	if cm.Immutable == nil || !*cm.Immutable {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), immutableMsg))
	}
	if !apiequality.Semantic.DeepEqual(cm.Data, oldCM.Data) {
		errs = append(errs, field.Forbidden(field.NewPath("data"), immutableMsg))
	}
	if !apiequality.Semantic.DeepEqual(cm.BinaryData, oldCM.BinaryData) {
		errs = append(errs, field.Forbidden(field.NewPath("binaryData"), immutableMsg))
	}
	return errs
}

func validateSecret(obj runtime.Object) field.ErrorList {
	s := obj.(*corev1.Secret)
	dataPath := field.NewPath("data")
	var errs field.ErrorList
	size := 0
	for _, key := range slices.Sorted(maps.Keys(s.Data)) {
		errs = append(errs, messages(dataPath.Key(key), key, validation.IsConfigMapKey(key))...)
		size += len(s.Data[key])
	}
	if size > corev1.MaxSecretSize {
		errs = append(errs, field.TooLong(dataPath, "", corev1.MaxSecretSize))
	}
	// Typed secrets promise their consumers certain keys.
	require := func(keys ...string) {
		for _, k := range keys {
			if _, ok := s.Data[k]; !ok {
				errs = append(errs, field.Required(dataPath.Key(k), ""))
			}
		}
	}
	requireJSON := func(key string) {
		if b, ok := s.Data[key]; !ok {
			require(key)
		} else if err := json.Unmarshal(b, &map[string]any{}); err != nil {
			errs = append(errs, field.Invalid(dataPath.Key(key), "<secret contents redacted>", err.Error()))
		}
	}
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg:
		requireJSON(corev1.DockerConfigKey)
	case corev1.SecretTypeDockerConfigJson:
		requireJSON(corev1.DockerConfigJsonKey)
	case corev1.SecretTypeBasicAuth:
		// Either may be empty, but one must be there.
		_, user := s.Data[corev1.BasicAuthUsernameKey]
		_, pass := s.Data[corev1.BasicAuthPasswordKey]
		if !user && !pass {
			require(corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey)
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			errs = append(errs, field.Required(dataPath.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		require(corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
	return errs
}

func validateSecretUpdate(obj, old runtime.Object) field.ErrorList {
	s, oldS := obj.(*corev1.Secret), old.(*corev1.Secret)
	errs := immutable(s.Type, oldS.Type, field.NewPath("type"))
	if oldS.Immutable != nil && *oldS.Immutable {
		if s.Immutable == nil || !*s.Immutable {
			errs = append(errs, field.Forbidden(field.NewPath("immutable"), immutableMsg))
		}
		if !apiequality.Semantic.DeepEqual(s.Data, oldS.Data) {
			errs = append(errs, field.Forbidden(field.NewPath("data"), immutableMsg))
		}
	}
	return errs
}

// ---- Namespaces, Nodes, Leases, Events ----

// standardFinalizers are the unqualified finalizer names Kubernetes defines.
var standardFinalizers = []string{string(corev1.FinalizerKubernetes), metav1.FinalizerOrphanDependents, metav1.FinalizerDeleteDependents}

func validateNamespace(obj runtime.Object) field.ErrorList {
	ns := obj.(*corev1.Namespace)
	p := field.NewPath("spec", "finalizers")
	var errs field.ErrorList
	for _, f := range ns.Spec.Finalizers {
		errs = append(errs, qualifiedName(string(f), p)...)
		if !strings.Contains(string(f), "/") && !slices.Contains(standardFinalizers, string(f)) {
			errs = append(errs, field.Invalid(p, string(f), "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	return errs
}

func validateNode(obj runtime.Object) field.ErrorList {
	n := obj.(*corev1.Node)
	errs := validateTaints(n.Spec.Taints, field.NewPath("spec", "taints"))
	cidrsPath := field.NewPath("spec", "podCIDRs")
	families := map[int]bool{}
	for i, c := range n.Spec.PodCIDRs {
		errs = append(errs, validation.IsValidCIDRForLegacyField(cidrsPath.Index(i), c, false, nil)...)
		if ip, _, err := net.ParseCIDR(c); err == nil {
			families[ipFamilyOf(ip)] = true
		}
	}
	// Several pod CIDRs only make sense as one per IP family (dual stack).
	if len(n.Spec.PodCIDRs) > 2 || (len(n.Spec.PodCIDRs) == 2 && len(families) != 2) {
		errs = append(errs, field.Invalid(cidrsPath, n.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
	}
	errs = append(errs, validateQuantities(n.Status.Capacity, field.NewPath("status", "capacity"))...)
	errs = append(errs, validateQuantities(n.Status.Allocatable, field.NewPath("status", "allocatable"))...)
	return errs
}

func validateLease(obj runtime.Object) field.ErrorList {
	spec, p := &obj.(*coordinationv1.Lease).Spec, field.NewPath("spec")
	var errs field.ErrorList
	if d := spec.LeaseDurationSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(p.Child("leaseDurationSeconds"), d, "must be greater than 0"))
	}
	if t := spec.LeaseTransitions; t != nil && *t < 0 {
		errs = append(errs, field.Invalid(p.Child("leaseTransitions"), t, "must be greater than or equal to 0"))
	}
	if s := spec.Strategy; s != nil {
		sp := p.Child("strategy")
		if strings.Contains(string(*s), "/") {
			errs = append(errs, qualifiedName(string(*s), sp)...)
		} else if *s != coordinationv1.OldestEmulationVersion {
			errs = append(errs, field.NotSupported(sp, *s, []coordinationv1.CoordinatedLeaseStrategy{coordinationv1.OldestEmulationVersion}))
		}
	}
	if h := spec.PreferredHolder; h != nil && *h != "" && (spec.Strategy == nil || *spec.Strategy == "") {
		errs = append(errs, field.Forbidden(p.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return errs
}

// Event limits from the events API.
const (
	eventReportingInstanceLimit = 128
	eventActionLimit            = 128
	eventReasonLimit            = 128
	eventNoteLimit              = 1024
)

// validateEvent is upstream's legacy (core/v1) event validation, plus a check
// that the event is about something.
func validateEvent(obj runtime.Object) field.ErrorList {
	e := obj.(*corev1.Event)
	var errs field.ErrorList
	io := e.InvolvedObject
	if io.Kind == "" && io.Name == "" && io.UID == "" {
		errs = append(errs, field.Required(field.NewPath("involvedObject"), ""))
	}
	nsPath := field.NewPath("involvedObject", "namespace")
	if e.EventTime.IsZero() {
		// An old-style event lives with its object, or in default for a
		// cluster-scoped one.
		if (io.Namespace == "" && e.Namespace != metav1.NamespaceNone && e.Namespace != metav1.NamespaceDefault) ||
			(io.Namespace != "" && e.Namespace != io.Namespace) {
			errs = append(errs, field.Invalid(nsPath, io.Namespace, "does not match event.namespace"))
		}
		return errs
	}
	// A new-style event (eventTime set) must say who reported it and what happened.
	if io.Namespace == "" && e.Namespace != metav1.NamespaceDefault && e.Namespace != metav1.NamespaceSystem {
		errs = append(errs, field.Invalid(nsPath, io.Namespace, "does not match event.namespace"))
	}
	if e.ReportingController == "" {
		errs = append(errs, field.Required(field.NewPath("reportingComponent"), ""))
	}
	errs = append(errs, qualifiedName(e.ReportingController, field.NewPath("reportingComponent"))...)
	for _, f := range []struct {
		name, value string
		limit       int
		required    bool
	}{
		{"reportingInstance", e.ReportingInstance, eventReportingInstanceLimit, true},
		{"action", e.Action, eventActionLimit, true},
		{"reason", e.Reason, eventReasonLimit, true},
		{"message", e.Message, eventNoteLimit, false},
	} {
		if f.required && f.value == "" {
			errs = append(errs, field.Required(field.NewPath(f.name), ""))
		}
		if len(f.value) > f.limit {
			errs = append(errs, field.Invalid(field.NewPath(f.name), "", fmt.Sprintf("can have at most %d characters", f.limit)))
		}
	}
	return errs
}
