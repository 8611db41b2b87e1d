package printers

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// core/v1 printers.

var namespaceColumns = columns(
	nameColumn(),
	stringColumn("Status", "The status of the namespace"),
	ageColumn(),
)

func namespaceCells(ns *corev1.Namespace, now time.Time) []any {
	return []any{ns.Name, string(ns.Status.Phase), age(ns.CreationTimestamp, now)}
}

var configMapColumns = columns(
	nameColumn(),
	stringColumn("Data", corev1.ConfigMap{}.SwaggerDoc()["data"]),
	ageColumn(),
)

func configMapCells(cm *corev1.ConfigMap, now time.Time) []any {
	return []any{cm.Name, int64(len(cm.Data) + len(cm.BinaryData)), age(cm.CreationTimestamp, now)}
}

var secretColumns = columns(
	nameColumn(),
	stringColumn("Type", corev1.Secret{}.SwaggerDoc()["type"]),
	stringColumn("Data", corev1.Secret{}.SwaggerDoc()["data"]),
	ageColumn(),
)

func secretCells(s *corev1.Secret, now time.Time) []any {
	// stringData is merged into data on write; count keys of both, once.
	keys := len(s.Data)
	for k := range s.StringData {
		if _, dup := s.Data[k]; !dup {
			keys++
		}
	}
	return []any{s.Name, string(s.Type), int64(keys), age(s.CreationTimestamp, now)}
}

var serviceAccountColumns = columns(
	nameColumn(),
	stringColumn("Secrets", corev1.ServiceAccount{}.SwaggerDoc()["secrets"]),
	ageColumn(),
)

func serviceAccountCells(sa *corev1.ServiceAccount, now time.Time) []any {
	return []any{sa.Name, int64(len(sa.Secrets)), age(sa.CreationTimestamp, now)}
}

var endpointsColumns = columns(
	nameColumn(),
	stringColumn("Endpoints", corev1.Endpoints{}.SwaggerDoc()["subsets"]), //nolint:staticcheck // Endpoints is deprecated but still served.
	ageColumn(),
)

func endpointsCells(ep *corev1.Endpoints, now time.Time) []any { //nolint:staticcheck // see above
	return []any{ep.Name, formatEndpoints(ep.Subsets), age(ep.CreationTimestamp, now)}
}

// formatEndpoints lists up to three ip:port pairs (or bare IPs for subsets
// without ports), then "+ N more...".
func formatEndpoints(subsets []corev1.EndpointSubset) string { //nolint:staticcheck // see above
	if len(subsets) == 0 {
		return "<none>"
	}
	var list []string
	for _, ss := range subsets {
		if len(ss.Ports) == 0 {
			for _, a := range ss.Addresses {
				list = append(list, a.IP)
			}
			continue
		}
		for _, p := range ss.Ports {
			for _, a := range ss.Addresses {
				list = append(list, hostPort(a.IP, p.Port))
			}
		}
	}
	return firstN(list, 3, "")
}

var replicationControllerColumns = columns(
	nameColumn(),
	integerColumn("Desired", corev1.ReplicationControllerSpec{}.SwaggerDoc()["replicas"]),
	integerColumn("Current", corev1.ReplicationControllerStatus{}.SwaggerDoc()["replicas"]),
	integerColumn("Ready", corev1.ReplicationControllerStatus{}.SwaggerDoc()["readyReplicas"]),
	ageColumn(),
	containerColumns(),
	wide(stringColumn("Selector", corev1.ReplicationControllerSpec{}.SwaggerDoc()["selector"])),
)

func replicationControllerCells(rc *corev1.ReplicationController, now time.Time) []any {
	var containers []corev1.Container
	if rc.Spec.Template != nil {
		containers = rc.Spec.Template.Spec.Containers
	}
	names, images := containerCells(containers)
	return []any{
		rc.Name,
		int64(replicas(rc.Spec.Replicas)),
		int64(rc.Status.Replicas),
		int64(rc.Status.ReadyReplicas),
		age(rc.CreationTimestamp, now),
		names, images, labels.FormatLabels(rc.Spec.Selector),
	}
}

// replicas dereferences a desired replica count; nil means the API default, 1.
func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

var serviceColumns = columns(
	nameColumn(),
	stringColumn("Type", corev1.ServiceSpec{}.SwaggerDoc()["type"]),
	stringColumn("Cluster-IP", corev1.ServiceSpec{}.SwaggerDoc()["clusterIP"]),
	stringColumn("External-IP", corev1.ServiceSpec{}.SwaggerDoc()["externalIPs"]),
	stringColumn("Port(s)", corev1.ServiceSpec{}.SwaggerDoc()["ports"]),
	ageColumn(),
	wide(stringColumn("Selector", corev1.ServiceSpec{}.SwaggerDoc()["selector"])),
)

func serviceCells(svc *corev1.Service, now time.Time) []any {
	clusterIP := "<none>"
	switch {
	case len(svc.Spec.ClusterIPs) > 0:
		clusterIP = svc.Spec.ClusterIPs[0]
	case svc.Spec.ClusterIP != "":
		clusterIP = svc.Spec.ClusterIP
	}
	return []any{
		svc.Name,
		string(svc.Spec.Type),
		clusterIP,
		serviceExternalIP(svc),
		orNone(servicePorts(svc.Spec.Ports)),
		age(svc.CreationTimestamp, now),
		labels.FormatLabels(svc.Spec.Selector),
	}
}

func serviceExternalIP(svc *corev1.Service) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		return orNone(strings.Join(svc.Spec.ExternalIPs, ","))
	case corev1.ServiceTypeLoadBalancer:
		lb := loadBalancerAddresses(svc.Status.LoadBalancer.Ingress, func(i corev1.LoadBalancerIngress) (string, string) { return i.IP, i.Hostname })
		if len(svc.Spec.ExternalIPs) > 0 {
			var all []string
			if lb != "" {
				all = append(all, strings.Split(lb, ",")...)
			}
			return strings.Join(append(all, svc.Spec.ExternalIPs...), ",")
		}
		if lb != "" {
			return lb
		}
		return "<pending>"
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return "<unknown>"
}

// servicePorts formats ports as port[:nodePort]/protocol, comma separated.
func servicePorts(ports []corev1.ServicePort) string {
	pieces := make([]string, len(ports))
	for i, p := range ports {
		if p.NodePort > 0 {
			pieces[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		} else {
			pieces[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		}
	}
	return strings.Join(pieces, ",")
}

var nodeColumns = columns(
	nameColumn(),
	stringColumn("Status", "The status of the node"),
	stringColumn("Roles", "The roles of the node"),
	ageColumn(),
	stringColumn("Version", corev1.NodeSystemInfo{}.SwaggerDoc()["kubeletVersion"]),
	wide(stringColumn("Internal-IP", corev1.NodeStatus{}.SwaggerDoc()["addresses"])),
	wide(stringColumn("External-IP", corev1.NodeStatus{}.SwaggerDoc()["addresses"])),
	wide(stringColumn("OS-Image", corev1.NodeSystemInfo{}.SwaggerDoc()["osImage"])),
	wide(stringColumn("Kernel-Version", corev1.NodeSystemInfo{}.SwaggerDoc()["kernelVersion"])),
	wide(stringColumn("Container-Runtime", corev1.NodeSystemInfo{}.SwaggerDoc()["containerRuntimeVersion"])),
)

const (
	// nodeRoleLabelPrefix marks a role with a node-role.kubernetes.io/<role> label.
	nodeRoleLabelPrefix = "node-role.kubernetes.io/"
	// nodeRoleLabel names a role in the value of the kubernetes.io/role label.
	nodeRoleLabel = "kubernetes.io/role"
)

func nodeCells(n *corev1.Node, now time.Time) []any {
	info := n.Status.NodeInfo
	return []any{
		n.Name,
		nodeStatus(n),
		orNone(strings.Join(nodeRoles(n.Labels), ",")),
		age(n.CreationTimestamp, now),
		info.KubeletVersion,
		nodeAddress(n, corev1.NodeInternalIP),
		nodeAddress(n, corev1.NodeExternalIP),
		orUnknown(info.OSImage),
		orUnknown(info.KernelVersion),
		orUnknown(info.ContainerRuntimeVersion),
	}
}

// nodeStatus is Ready / NotReady / Unknown from the last Ready condition,
// plus SchedulingDisabled for cordoned nodes.
func nodeStatus(n *corev1.Node) string {
	var status []string
	var ready *corev1.NodeCondition
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			ready = &n.Status.Conditions[i]
		}
	}
	switch {
	case ready == nil:
		status = append(status, "Unknown")
	case ready.Status == corev1.ConditionTrue:
		status = append(status, string(corev1.NodeReady))
	default:
		status = append(status, "Not"+string(corev1.NodeReady))
	}
	if n.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}
	return strings.Join(status, ",")
}

// nodeRoles returns the sorted roles named by node-role.kubernetes.io/<role>
// and kubernetes.io/role=<role> labels.
func nodeRoles(nodeLabels map[string]string) []string {
	var roles []string
	for k, v := range nodeLabels {
		switch {
		case strings.HasPrefix(k, nodeRoleLabelPrefix):
			roles = append(roles, strings.TrimPrefix(k, nodeRoleLabelPrefix))
		case k == nodeRoleLabel:
			roles = append(roles, v)
		}
	}
	return sortedUnique(roles)
}

// nodeAddress returns the node's first address of the given type, or <none>.
func nodeAddress(n *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return "<none>"
}

var eventColumns = columns(
	stringColumn("Last Seen", corev1.Event{}.SwaggerDoc()["lastTimestamp"]),
	stringColumn("Type", corev1.Event{}.SwaggerDoc()["type"]),
	stringColumn("Reason", corev1.Event{}.SwaggerDoc()["reason"]),
	stringColumn("Object", corev1.Event{}.SwaggerDoc()["involvedObject"]),
	wide(stringColumn("Subobject", corev1.ObjectReference{}.SwaggerDoc()["fieldPath"])),
	wide(stringColumn("Source", corev1.Event{}.SwaggerDoc()["source"])),
	stringColumn("Message", corev1.Event{}.SwaggerDoc()["message"]),
	wide(stringColumn("First Seen", corev1.Event{}.SwaggerDoc()["firstTimestamp"])),
	wide(stringColumn("Count", corev1.Event{}.SwaggerDoc()["count"])),
	wide(nameColumn()),
)

func eventCells(e *corev1.Event, now time.Time) []any {
	first := age(e.FirstTimestamp, now)
	if e.FirstTimestamp.IsZero() {
		first = microAge(e.EventTime, now)
	}
	last := age(e.LastTimestamp, now)
	if e.LastTimestamp.IsZero() {
		last = first
	}
	count := e.Count
	if e.Series != nil {
		last = microAge(e.Series.LastObservedTime, now)
		count = e.Series.Count
	} else if count == 0 {
		count = 1 // singleton events from the events.k8s.io API carry no count
	}
	object := strings.ToLower(e.InvolvedObject.Kind)
	if e.InvolvedObject.Name != "" {
		object += "/" + e.InvolvedObject.Name
	}
	return []any{
		last,
		e.Type,
		e.Reason,
		object,
		e.InvolvedObject.FieldPath,
		eventSource(e),
		strings.TrimSpace(e.Message),
		first,
		int64(count),
		e.Name,
	}
}

// eventSource is "component[, host]", falling back to the reporting
// controller and instance.
func eventSource(e *corev1.Event) string {
	component := e.Source.Component
	if component == "" {
		component = e.ReportingController
	}
	host := e.Source.Host
	if host == "" {
		host = e.ReportingInstance
	}
	if host == "" {
		return component
	}
	return component + ", " + host
}

var podColumns = columns(
	nameColumn(),
	stringColumn("Ready", "The aggregate readiness state of this pod for accepting traffic."),
	stringColumn("Status", "The aggregate status of the containers in this pod."),
	stringColumn("Restarts", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
	ageColumn(),
	wide(stringColumn("IP", corev1.PodStatus{}.SwaggerDoc()["podIP"])),
	wide(stringColumn("Node", corev1.PodSpec{}.SwaggerDoc()["nodeName"])),
	wide(stringColumn("Nominated Node", corev1.PodStatus{}.SwaggerDoc()["nominatedNodeName"])),
	wide(stringColumn("Readiness Gates", corev1.PodSpec{}.SwaggerDoc()["readinessGates"])),
)

// nodeUnreachablePodReason is the pod status reason set for pods on a lost node.
const nodeUnreachablePodReason = "NodeLost"

func podCells(pod *corev1.Pod, now time.Time) []any {
	s := summarizePod(pod)
	restarts := fmt.Sprint(s.restarts)
	if s.restarts != 0 && !s.lastRestart.IsZero() {
		restarts = fmt.Sprintf("%d (%s ago)", s.restarts, age(s.lastRestart, now))
	}
	podIP := ""
	switch {
	case len(pod.Status.PodIPs) > 0:
		podIP = pod.Status.PodIPs[0].IP
	default:
		podIP = pod.Status.PodIP
	}
	return []any{
		pod.Name,
		fmt.Sprintf("%d/%d", s.ready, s.total),
		s.reason,
		restarts,
		age(pod.CreationTimestamp, now),
		orNone(podIP),
		orNone(pod.Spec.NodeName),
		orNone(pod.Status.NominatedNodeName),
		readinessGates(pod),
	}
}

func podConditions(pod *corev1.Pod) []metav1.TableRowCondition {
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		return []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: string(corev1.PodSucceeded), Message: "The pod has completed successfully."}}
	case corev1.PodFailed:
		return []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: string(corev1.PodFailed), Message: "The pod failed."}}
	}
	return nil
}

// podSummary is what the Ready, Status and Restarts columns show.
type podSummary struct {
	ready, total int
	reason       string
	restarts     int
	lastRestart  metav1.Time
}

// summarizePod derives a pod's readiness, status reason and restarts the way
// kubectl shows them (Completed, CrashLoopBackOff, Init:0/1, Terminating, ...).
func summarizePod(pod *corev1.Pod) podSummary {
	s := podSummary{total: len(pod.Spec.Containers), reason: string(pod.Status.Phase)}
	if pod.Status.Reason != "" {
		s.reason = pod.Status.Reason
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
			s.reason = corev1.PodReasonSchedulingGated
		}
	}

	// Sidecars (restartable init containers) count as regular containers.
	sidecar := make(map[string]bool, len(pod.Spec.InitContainers))
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecar[c.Name] = true
			s.total++
		}
	}

	var sidecarRestarts int
	var lastSidecarRestart metav1.Time
	initializing := false
	for i, cs := range pod.Status.InitContainerStatuses {
		s.restarts += int(cs.RestartCount)
		s.lastRestart = laterTermination(s.lastRestart, cs)
		if sidecar[cs.Name] {
			sidecarRestarts += int(cs.RestartCount)
			lastSidecarRestart = laterTermination(lastSidecarRestart, cs)
		}
		if reason, blocking, ready := initContainerState(cs, sidecar[cs.Name], i, len(pod.Spec.InitContainers)); blocking {
			s.reason = reason
			initializing = true
			break
		} else if ready {
			s.ready++
		}
	}

	if !initializing || podInitialized(pod) {
		s.restarts, s.lastRestart = sidecarRestarts, lastSidecarRestart
		hasRunning := false
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			cs := pod.Status.ContainerStatuses[i]
			s.restarts += int(cs.RestartCount)
			s.lastRestart = laterTermination(s.lastRestart, cs)
			switch {
			case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
				s.reason = cs.State.Waiting.Reason
			case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
				s.reason = cs.State.Terminated.Reason
			case cs.State.Terminated != nil:
				s.reason = exitReason("", cs.State.Terminated)
			case cs.Ready && cs.State.Running != nil:
				hasRunning = true
				s.ready++
			}
		}
		// A completed container next to a running one: the pod still runs.
		if s.reason == "Completed" && hasRunning {
			if podConditionTrue(pod, corev1.PodReady) {
				s.reason = "Running"
			} else {
				s.reason = "NotReady"
			}
		}
	}

	if pod.DeletionTimestamp != nil {
		if pod.Status.Reason == nodeUnreachablePodReason {
			s.reason = "Unknown"
		} else if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			s.reason = "Terminating"
		}
	}
	return s
}

// initContainerState classifies the i-th of n init container statuses.
// blocking reports that initialization stops here, with the reason to show;
// otherwise ready reports a started, ready sidecar.
func initContainerState(cs corev1.ContainerStatus, sidecar bool, i, n int) (reason string, blocking, ready bool) {
	switch {
	case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
		return "", false, false
	case sidecar && cs.Started != nil && *cs.Started:
		return "", false, cs.Ready
	case cs.State.Terminated != nil:
		if cs.State.Terminated.Reason != "" {
			return "Init:" + cs.State.Terminated.Reason, true, false
		}
		return exitReason("Init:", cs.State.Terminated), true, false
	case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing":
		return "Init:" + cs.State.Waiting.Reason, true, false
	default:
		return fmt.Sprintf("Init:%d/%d", i, n), true, false
	}
}

// exitReason formats a termination without a reason as Signal:N or ExitCode:N.
func exitReason(prefix string, t *corev1.ContainerStateTerminated) string {
	if t.Signal != 0 {
		return fmt.Sprintf("%sSignal:%d", prefix, t.Signal)
	}
	return fmt.Sprintf("%sExitCode:%d", prefix, t.ExitCode)
}

// laterTermination returns the later of last and the container's last
// termination time.
func laterTermination(last metav1.Time, cs corev1.ContainerStatus) metav1.Time {
	if t := cs.LastTerminationState.Terminated; t != nil && last.Before(&t.FinishedAt) {
		return t.FinishedAt
	}
	return last
}

func podInitialized(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodInitialized {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podConditionTrue(pod *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// readinessGates is "<true gates>/<gates>", or <none>.
func readinessGates(pod *corev1.Pod) string {
	if len(pod.Spec.ReadinessGates) == 0 {
		return "<none>"
	}
	trueGates := 0
	for _, g := range pod.Spec.ReadinessGates {
		for _, c := range pod.Status.Conditions {
			if c.Type == g.ConditionType {
				if c.Status == corev1.ConditionTrue {
					trueGates++
				}
				break
			}
		}
	}
	return fmt.Sprintf("%d/%d", trueGates, len(pod.Spec.ReadinessGates))
}
