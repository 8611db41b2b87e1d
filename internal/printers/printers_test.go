package printers

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time     { return metav1.NewTime(now.Add(-d)) }
func agoPtr(d time.Duration) *metav1.Time { t := ago(d); return &t }
func ptr[T any](v T) *T                   { return &v }

func objMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(10 * time.Minute), ResourceVersion: "42", Labels: map[string]string{"app": name}}
}

// mustTable builds a table with metadata rows and checks its invariants.
func mustTable(t *testing.T, obj runtime.Object) *metav1.Table {
	t.Helper()
	tbl, err := Table(obj, metav1.IncludeMetadata, now)
	if err != nil {
		t.Fatalf("Table(%T): %v", obj, err)
	}
	for i, r := range tbl.Rows {
		if len(r.Cells) != len(tbl.ColumnDefinitions) {
			t.Fatalf("row %d: %d cells for %d columns", i, len(r.Cells), len(tbl.ColumnDefinitions))
		}
	}
	return tbl
}

// cell returns the named column's cell of the first row.
func cell(t *testing.T, tbl *metav1.Table, column string) any {
	t.Helper()
	for i, c := range tbl.ColumnDefinitions {
		if c.Name == column {
			return tbl.Rows[0].Cells[i]
		}
	}
	t.Fatalf("no column %q in %v", column, columnNames(tbl))
	return nil
}

func columnNames(tbl *metav1.Table) []string {
	var names []string
	for _, c := range tbl.ColumnDefinitions {
		names = append(names, c.Name)
	}
	return names
}

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

func running() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(time.Minute)}}
}

func terminated(reason string, code int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code}}
}

func pod(mutate func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: objMeta("web"),
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	mutate(p)
	return p
}

func TestColumns(t *testing.T) {
	tests := []struct {
		obj        runtime.Object
		normal     []string
		wideColumn []string
	}{
		{&corev1.Namespace{}, []string{"Name", "Status", "Age"}, nil},
		{&corev1.Pod{}, []string{"Name", "Ready", "Status", "Restarts", "Age"}, []string{"IP", "Node", "Nominated Node", "Readiness Gates"}},
		{&corev1.Node{}, []string{"Name", "Status", "Roles", "Age", "Version"}, []string{"Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"}},
		{&corev1.Service{}, []string{"Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"}, []string{"Selector"}},
		{&corev1.Endpoints{}, []string{"Name", "Endpoints", "Age"}, nil}, //nolint:staticcheck
		{&corev1.ConfigMap{}, []string{"Name", "Data", "Age"}, nil},
		{&corev1.Secret{}, []string{"Name", "Type", "Data", "Age"}, nil},
		{&corev1.ServiceAccount{}, []string{"Name", "Secrets", "Age"}, nil},
		{&corev1.Event{}, []string{"Last Seen", "Type", "Reason", "Object", "Message"}, []string{"Subobject", "Source", "First Seen", "Count", "Name"}},
		{&corev1.ReplicationController{}, []string{"Name", "Desired", "Current", "Ready", "Age"}, []string{"Containers", "Images", "Selector"}},
		{&appsv1.Deployment{}, []string{"Name", "Ready", "Up-to-date", "Available", "Age"}, []string{"Containers", "Images", "Selector"}},
		{&appsv1.ReplicaSet{}, []string{"Name", "Desired", "Current", "Ready", "Age"}, []string{"Containers", "Images", "Selector"}},
		{&batchv1.Job{}, []string{"Name", "Status", "Completions", "Duration", "Age"}, []string{"Containers", "Images", "Selector"}},
		{&batchv1.CronJob{}, []string{"Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"}, []string{"Containers", "Images", "Selector"}},
		{&coordinationv1.Lease{}, []string{"Name", "Holder", "Age"}, nil},
		{&discoveryv1.EndpointSlice{}, []string{"Name", "AddressType", "Ports", "Endpoints", "Age"}, nil},
		{&networkingv1.Ingress{}, []string{"Name", "Class", "Hosts", "Address", "Ports", "Age"}, nil},
		{&networkingv1.IngressClass{}, []string{"Name", "Controller", "Parameters", "Age"}, nil},
		{&rbacv1.Role{}, []string{"Name", "Created At"}, nil},
	}
	for _, tc := range tests {
		t.Run(reflect.TypeOf(tc.obj).Elem().Name(), func(t *testing.T) {
			tbl := mustTable(t, tc.obj)
			var normal, wideCols []string
			for _, c := range tbl.ColumnDefinitions {
				switch c.Priority {
				case 0:
					normal = append(normal, c.Name)
				case 1:
					wideCols = append(wideCols, c.Name)
				default:
					t.Errorf("column %q: priority %d", c.Name, c.Priority)
				}
				if c.Description == "" {
					t.Errorf("column %q has no description", c.Name)
				}
				if c.Name == "Name" && (c.Format != "name" || c.Description != metav1.ObjectMeta{}.SwaggerDoc()["name"]) {
					t.Errorf("Name column = %+v", c)
				}
				if c.Name != "Name" && c.Format != "" {
					t.Errorf("column %q has format %q", c.Name, c.Format)
				}
			}
			if !reflect.DeepEqual(normal, tc.normal) {
				t.Errorf("columns = %q, want %q", normal, tc.normal)
			}
			if !reflect.DeepEqual(wideCols, tc.wideColumn) {
				t.Errorf("wide columns = %q, want %q", wideCols, tc.wideColumn)
			}
		})
	}
}

func TestPodCells(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		want map[string]any
	}{
		{
			name: "running and ready",
			pod: pod(func(p *corev1.Pod) {
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true, State: running()}}
				p.Status.PodIPs = []corev1.PodIP{{IP: "10.1.0.5"}, {IP: "fd00::5"}}
				p.Spec.NodeName = "node-1"
			}),
			want: map[string]any{"Name": "web", "Ready": "1/1", "Status": "Running", "Restarts": "0", "Age": "10m",
				"IP": "10.1.0.5", "Node": "node-1", "Nominated Node": "<none>", "Readiness Gates": "<none>"},
		},
		{
			name: "crash loop",
			pod: pod(func(p *corev1.Pod) {
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{
					Name: "app", RestartCount: 3, State: waiting("CrashLoopBackOff"),
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: ago(5 * time.Minute)}},
				}}
			}),
			want: map[string]any{"Ready": "0/1", "Status": "CrashLoopBackOff", "Restarts": "3 (5m ago)"},
		},
		{
			name: "terminating",
			pod: pod(func(p *corev1.Pod) {
				p.DeletionTimestamp = agoPtr(time.Second)
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true, State: running()}}
			}),
			want: map[string]any{"Ready": "1/1", "Status": "Terminating"},
		},
		{
			name: "deleted on lost node",
			pod: pod(func(p *corev1.Pod) {
				p.DeletionTimestamp = agoPtr(time.Second)
				p.Status.Reason = "NodeLost"
			}),
			want: map[string]any{"Status": "Unknown"},
		},
		{
			name: "completed",
			pod: pod(func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodSucceeded
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: terminated("Completed", 0)}}
			}),
			want: map[string]any{"Ready": "0/1", "Status": "Completed"},
		},
		{
			name: "completed deleting stays completed",
			pod: pod(func(p *corev1.Pod) {
				p.DeletionTimestamp = agoPtr(time.Second)
				p.Status.Phase = corev1.PodSucceeded
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: terminated("Completed", 0)}}
			}),
			want: map[string]any{"Status": "Completed"},
		},
		{
			name: "killed by signal",
			pod: pod(func(p *corev1.Pod) {
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Signal: 9, ExitCode: 137}}}}
			}),
			want: map[string]any{"Status": "Signal:9"},
		},
		{
			name: "container creating",
			pod: pod(func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: waiting("ContainerCreating")}}
			}),
			want: map[string]any{"Ready": "0/1", "Status": "ContainerCreating"},
		},
		{
			name: "pending without statuses",
			pod:  pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }),
			want: map[string]any{"Ready": "0/1", "Status": "Pending", "IP": "<none>", "Node": "<none>"},
		},
		{
			name: "scheduling gated",
			pod: pod(func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated}}
			}),
			want: map[string]any{"Status": "SchedulingGated"},
		},
		{
			name: "init container running",
			pod: pod(func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Spec.InitContainers = []corev1.Container{{Name: "init"}}
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", State: running()}}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: waiting("PodInitializing")}}
			}),
			want: map[string]any{"Ready": "0/1", "Status": "Init:0/1"},
		},
		{
			name: "second init container pulling",
			pod: pod(func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Spec.InitContainers = []corev1.Container{{Name: "a"}, {Name: "b"}}
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{
					{Name: "a", State: terminated("Completed", 0)},
					{Name: "b", State: waiting("ImagePullBackOff")},
				}
			}),
			want: map[string]any{"Status": "Init:ImagePullBackOff"},
		},
		{
			name: "init container failed",
			pod: pod(func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Spec.InitContainers = []corev1.Container{{Name: "init"}}
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", RestartCount: 2, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: ago(90 * time.Second)}}}}
			}),
			want: map[string]any{"Status": "Init:ExitCode:1", "Restarts": "2 (90s ago)"},
		},
		{
			name: "sidecar counts as a container",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "proxy", RestartPolicy: ptr(corev1.ContainerRestartPolicyAlways)}}
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "proxy", Ready: true, Started: ptr(true), State: running(), RestartCount: 1,
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: ago(time.Hour)}}}}
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true, State: running()}}
			}),
			want: map[string]any{"Ready": "2/2", "Status": "Running", "Restarts": "1 (60m ago)"},
		},
		{
			name: "completed container next to a running one",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "job"})
				p.Status.ContainerStatuses = []corev1.ContainerStatus{
					{Name: "app", Ready: true, State: running()},
					{Name: "job", State: terminated("Completed", 0)},
				}
			}),
			want: map[string]any{"Ready": "1/2", "Status": "NotReady"},
		},
		{
			name: "readiness gates and nominated node",
			pod: pod(func(p *corev1.Pod) {
				p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "a"}, {ConditionType: "b"}}
				p.Status.Conditions = []corev1.PodCondition{{Type: "a", Status: corev1.ConditionTrue}, {Type: "b", Status: corev1.ConditionFalse}}
				p.Status.NominatedNodeName = "node-2"
				p.Status.PodIP = "10.0.0.9"
			}),
			want: map[string]any{"Readiness Gates": "1/2", "Nominated Node": "node-2", "IP": "10.0.0.9"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl := mustTable(t, tc.pod)
			for col, want := range tc.want {
				if got := cell(t, tbl, col); got != want {
					t.Errorf("%s = %#v, want %#v", col, got, want)
				}
			}
		})
	}
}

func TestPodRowConditions(t *testing.T) {
	tests := []struct {
		phase corev1.PodPhase
		want  []metav1.TableRowCondition
	}{
		{corev1.PodRunning, nil},
		{corev1.PodSucceeded, []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "The pod has completed successfully."}}},
		{corev1.PodFailed, []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: "Failed", Message: "The pod failed."}}},
	}
	for _, tc := range tests {
		tbl := mustTable(t, pod(func(p *corev1.Pod) { p.Status.Phase = tc.phase }))
		if got := tbl.Rows[0].Conditions; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: conditions = %+v, want %+v", tc.phase, got, tc.want)
		}
	}
}

func TestCells(t *testing.T) {
	job := func(mutate func(*batchv1.Job)) *batchv1.Job {
		j := &batchv1.Job{
			ObjectMeta: objMeta("pi"),
			Spec: batchv1.JobSpec{
				Completions: ptr(int32(1)),
				Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "abc"}},
				Template:    corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "pi", Image: "perl"}}}},
			},
			Status: batchv1.JobStatus{StartTime: agoPtr(9 * time.Minute)},
		}
		mutate(j)
		return j
	}
	tests := []struct {
		name string
		obj  runtime.Object
		want []any
	}{
		{
			name: "completed job",
			obj: job(func(j *batchv1.Job) {
				j.Status.Succeeded = 1
				j.Status.CompletionTime = agoPtr(8*time.Minute + 30*time.Second)
				j.Status.Conditions = []batchv1.JobCondition{
					{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue},
					{Type: batchv1.JobComplete, Status: corev1.ConditionTrue},
				}
			}),
			want: []any{"pi", "Complete", "1/1", "30s", "10m", "pi", "perl", "batch.kubernetes.io/controller-uid=abc"},
		},
		{
			name: "running job",
			obj: job(func(j *batchv1.Job) {
				j.Spec.Completions = nil
				j.Spec.Parallelism = ptr(int32(3))
			}),
			want: []any{"pi", "Running", "0/1 of 3", "9m", "10m", "pi", "perl", "batch.kubernetes.io/controller-uid=abc"},
		},
		{
			name: "failed job",
			obj: job(func(j *batchv1.Job) {
				j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue}, {Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}
			}),
			want: []any{"pi", "Failed", "0/1", "9m", "10m", "pi", "perl", "batch.kubernetes.io/controller-uid=abc"},
		},
		{
			name: "suspended job not started",
			obj: job(func(j *batchv1.Job) {
				j.Status.StartTime = nil
				j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobSuspended, Status: corev1.ConditionTrue}}
			}),
			want: []any{"pi", "Suspended", "0/1", "", "10m", "pi", "perl", "batch.kubernetes.io/controller-uid=abc"},
		},
		{
			name: "terminating job",
			obj:  job(func(j *batchv1.Job) { j.DeletionTimestamp = agoPtr(time.Second) }),
			want: []any{"pi", "Terminating", "0/1", "9m", "10m", "pi", "perl", "batch.kubernetes.io/controller-uid=abc"},
		},
		{
			name: "cronjob",
			obj: &batchv1.CronJob{
				ObjectMeta: objMeta("nightly"),
				Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", Suspend: ptr(false), JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: "busybox"}, {Name: "b", Image: "alpine"}}}},
				}}},
				Status: batchv1.CronJobStatus{Active: []corev1.ObjectReference{{Name: "x"}}, LastScheduleTime: agoPtr(3 * time.Hour)},
			},
			want: []any{"nightly", "0 3 * * *", "<none>", "False", int64(1), "3h", "10m", "a,b", "busybox,alpine", "<none>"},
		},
		{
			name: "deployment",
			obj: &appsv1.Deployment{
				ObjectMeta: objMeta("web"),
				Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(3)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.27"}}}}},
				Status: appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2},
			},
			want: []any{"web", "2/3", int64(3), int64(2), "10m", "nginx", "nginx:1.27", "app=web"},
		},
		{
			name: "replicaset",
			obj: &appsv1.ReplicaSet{
				ObjectMeta: objMeta("web-5d9"),
				Spec: appsv1.ReplicaSetSpec{Replicas: ptr(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx"}}}}},
				Status: appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 1},
			},
			want: []any{"web-5d9", int64(2), int64(2), int64(1), "10m", "nginx", "nginx", "app=web"},
		},
		{
			name: "replicationcontroller",
			obj: &corev1.ReplicationController{
				ObjectMeta: objMeta("rc"),
				Spec:       corev1.ReplicationControllerSpec{Selector: map[string]string{"app": "rc"}, Template: &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}},
				Status:     corev1.ReplicationControllerStatus{Replicas: 1},
			},
			want: []any{"rc", int64(1), int64(1), int64(0), "10m", "c", "i", "app=rc"},
		},
		{
			name: "cluster ip service",
			obj: &corev1.Service{
				ObjectMeta: objMeta("api"),
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
					Ports: []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP}, {Port: 53, Protocol: corev1.ProtocolTCP}}, Selector: map[string]string{"k8s-app": "dns"}},
			},
			want: []any{"api", "ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP", "10m", "k8s-app=dns"},
		},
		{
			name: "pending load balancer",
			obj: &corev1.Service{
				ObjectMeta: objMeta("lb"),
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.1.1"},
					Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP}}},
			},
			want: []any{"lb", "LoadBalancer", "10.96.1.1", "<pending>", "80:30080/TCP", "10m", "<none>"},
		},
		{
			name: "load balancer with addresses",
			obj: &corev1.Service{
				ObjectMeta: objMeta("lb"),
				Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.1.1"}, ExternalIPs: []string{"1.1.1.1"}},
				Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
					{IP: "5.5.5.5"}, {Hostname: "lb.example.com"}, {IP: "2.2.2.2"}}}},
			},
			want: []any{"lb", "LoadBalancer", "10.96.1.1", "2.2.2.2,5.5.5.5,lb.example.com,1.1.1.1", "<none>", "10m", "<none>"},
		},
		{
			name: "external name service",
			obj:  &corev1.Service{ObjectMeta: objMeta("ext"), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}},
			want: []any{"ext", "ExternalName", "<none>", "example.com", "<none>", "10m", "<none>"},
		},
		{
			name: "node",
			obj: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: "n1", CreationTimestamp: ago(49 * time.Hour), Labels: map[string]string{
					"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker", "node-role.kubernetes.io/": "x"}},
				Spec: corev1.NodeSpec{Unschedulable: true},
				Status: corev1.NodeStatus{
					Conditions: []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
					Addresses:  []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "n1"}, {Type: corev1.NodeInternalIP, Address: "192.168.0.2"}},
					NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.33.1", OSImage: "Debian", KernelVersion: "6.1.0", ContainerRuntimeVersion: "containerd://2.0"},
				},
			},
			want: []any{"n1", "Ready,SchedulingDisabled", "control-plane,worker", "2d1h", "v1.33.1", "192.168.0.2", "<none>", "Debian", "6.1.0", "containerd://2.0"},
		},
		{
			name: "node without conditions",
			obj:  &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}},
			want: []any{"n2", "Unknown", "<none>", "<unknown>", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"},
		},
		{
			name: "not ready node",
			obj:  &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n3"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}}},
			want: []any{"n3", "NotReady", "<none>", "<unknown>", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"},
		},
		{
			name: "event",
			obj: &corev1.Event{
				ObjectMeta:     objMeta("web.17d"),
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web", FieldPath: "spec.containers{app}"},
				Reason:         "BackOff", Message: "Back-off restarting failed container\n", Type: corev1.EventTypeWarning,
				Source:         corev1.EventSource{Component: "kubelet", Host: "n1"},
				FirstTimestamp: ago(time.Hour), LastTimestamp: ago(2 * time.Minute), Count: 12,
			},
			want: []any{"2m", "Warning", "BackOff", "pod/web", "spec.containers{app}", "kubelet, n1", "Back-off restarting failed container", "60m", int64(12), "web.17d"},
		},
		{
			name: "event with series from the events API",
			obj: &corev1.Event{
				ObjectMeta:     objMeta("ev"),
				InvolvedObject: corev1.ObjectReference{Kind: "Node"},
				Reason:         "Starting", Type: corev1.EventTypeNormal,
				EventTime:           metav1.NewMicroTime(now.Add(-5 * time.Minute)),
				Series:              &corev1.EventSeries{Count: 4, LastObservedTime: metav1.NewMicroTime(now.Add(-30 * time.Second))},
				ReportingController: "kube-proxy",
			},
			want: []any{"30s", "Normal", "Starting", "node", "", "kube-proxy", "", "5m", int64(4), "ev"},
		},
		{
			name: "singleton event",
			obj:  &corev1.Event{ObjectMeta: objMeta("one"), EventTime: metav1.NewMicroTime(now.Add(-time.Minute))},
			want: []any{"60s", "", "", "", "", "", "", "60s", int64(1), "one"},
		},
		{
			name: "endpoints",
			obj: &corev1.Endpoints{ //nolint:staticcheck
				ObjectMeta: objMeta("web"),
				Subsets: []corev1.EndpointSubset{ //nolint:staticcheck
					{Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}}, Ports: []corev1.EndpointPort{{Port: 80}, {Port: 443}}}, //nolint:staticcheck
				},
			},
			want: []any{"web", "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...", "10m"},
		},
		{
			name: "endpoints without ports",
			obj: &corev1.Endpoints{ObjectMeta: objMeta("headless"), Subsets: []corev1.EndpointSubset{ //nolint:staticcheck
				{Addresses: []corev1.EndpointAddress{{IP: "fd00::1"}}}}}, //nolint:staticcheck
			want: []any{"headless", "fd00::1", "10m"},
		},
		{
			name: "empty endpoints",
			obj:  &corev1.Endpoints{ObjectMeta: objMeta("none")}, //nolint:staticcheck
			want: []any{"none", "<none>", "10m"},
		},
		{
			name: "configmap",
			obj:  &corev1.ConfigMap{ObjectMeta: objMeta("cfg"), Data: map[string]string{"a": "1", "b": "2"}, BinaryData: map[string][]byte{"c": nil}},
			want: []any{"cfg", int64(3), "10m"},
		},
		{
			name: "secret",
			obj:  &corev1.Secret{ObjectMeta: objMeta("tls"), Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil, "tls.key": nil}},
			want: []any{"tls", "kubernetes.io/tls", int64(2), "10m"},
		},
		{
			name: "serviceaccount",
			obj:  &corev1.ServiceAccount{ObjectMeta: objMeta("default")},
			want: []any{"default", int64(0), "10m"},
		},
		{
			name: "namespace",
			obj:  &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", CreationTimestamp: ago(400 * 24 * time.Hour)}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			want: []any{"kube-system", "Active", "400d"},
		},
		{
			name: "lease",
			obj:  &coordinationv1.Lease{ObjectMeta: objMeta("kube-scheduler"), Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("sched_1")}},
			want: []any{"kube-scheduler", "sched_1", "10m"},
		},
		{
			name: "lease without holder",
			obj:  &coordinationv1.Lease{ObjectMeta: objMeta("free")},
			want: []any{"free", "", "10m"},
		},
		{
			name: "endpointslice",
			obj: &discoveryv1.EndpointSlice{
				ObjectMeta:  objMeta("web-abc"),
				AddressType: discoveryv1.AddressTypeIPv4,
				Ports:       []discoveryv1.EndpointPort{{Port: ptr(int32(80))}, {Name: ptr("metrics")}, {}, {Port: ptr(int32(9090))}},
				Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}, {Addresses: []string{"10.0.0.2"}}},
			},
			want: []any{"web-abc", "IPv4", "80,metrics,* + 1 more...", "10.0.0.1,10.0.0.2", "10m"},
		},
		{
			name: "empty endpointslice",
			obj:  &discoveryv1.EndpointSlice{ObjectMeta: objMeta("e"), AddressType: discoveryv1.AddressTypeIPv6},
			want: []any{"e", "IPv6", "<unset>", "<unset>", "10m"},
		},
		{
			name: "ingress",
			obj: &networkingv1.Ingress{
				ObjectMeta: objMeta("ing"),
				Spec: networkingv1.IngressSpec{IngressClassName: ptr("nginx"), TLS: []networkingv1.IngressTLS{{Hosts: []string{"a.example.com"}}},
					Rules: []networkingv1.IngressRule{{Host: "a.example.com"}, {}, {Host: "b.example.com"}, {Host: "c.example.com"}, {Host: "d.example.com"}}},
				Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{Ingress: []networkingv1.IngressLoadBalancerIngress{{IP: "172.18.0.2"}}}},
			},
			want: []any{"ing", "nginx", "a.example.com,b.example.com,c.example.com + 2 more...", "172.18.0.2", "80, 443", "10m"},
		},
		{
			name: "ingress without hosts",
			obj:  &networkingv1.Ingress{ObjectMeta: objMeta("default-backend"), Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{}}}},
			want: []any{"default-backend", "<none>", "*", "", "80", "10m"},
		},
		{
			name: "ingressclass",
			obj: &networkingv1.IngressClass{ObjectMeta: objMeta("nginx"), Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx",
				Parameters: &networkingv1.IngressClassParametersReference{APIGroup: ptr("k8s.example.com"), Kind: "IngressParameters", Name: "external-lb"}}},
			want: []any{"nginx", "k8s.io/ingress-nginx", "IngressParameters.k8s.example.com/external-lb", "10m"},
		},
		{
			name: "ingressclass without parameters",
			obj:  &networkingv1.IngressClass{ObjectMeta: objMeta("traefik"), Spec: networkingv1.IngressClassSpec{Controller: "traefik.io/ingress-controller"}},
			want: []any{"traefik", "traefik.io/ingress-controller", "<none>", "10m"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl := mustTable(t, tc.obj)
			if len(tbl.Rows) != 1 {
				t.Fatalf("rows = %d, want 1", len(tbl.Rows))
			}
			if got := tbl.Rows[0].Cells; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("cells (%q)\n got %#v\nwant %#v", columnNames(tbl), got, tc.want)
			}
		})
	}
}

func TestRowObject(t *testing.T) {
	p := pod(func(p *corev1.Pod) { p.Spec.NodeName = "n1" })
	tests := []struct {
		policy metav1.IncludeObjectPolicy
		check  func(t *testing.T, obj runtime.Object)
	}{
		{metav1.IncludeMetadata, func(t *testing.T, obj runtime.Object) {
			pom, ok := obj.(*metav1.PartialObjectMetadata)
			if !ok {
				t.Fatalf("object = %T, want *PartialObjectMetadata", obj)
			}
			if pom.APIVersion != "meta.k8s.io/v1" || pom.Kind != "PartialObjectMetadata" {
				t.Errorf("type meta = %+v", pom.TypeMeta)
			}
			if !reflect.DeepEqual(pom.ObjectMeta, p.ObjectMeta) {
				t.Errorf("metadata = %+v, want %+v", pom.ObjectMeta, p.ObjectMeta)
			}
			pom.Labels["app"] = "changed"
			if p.Labels["app"] != "web" {
				t.Error("row metadata aliases the object's labels")
			}
		}},
		{"", func(t *testing.T, obj runtime.Object) {
			if _, ok := obj.(*metav1.PartialObjectMetadata); !ok {
				t.Fatalf("object = %T, want *PartialObjectMetadata", obj)
			}
		}},
		{metav1.IncludeObject, func(t *testing.T, obj runtime.Object) {
			got, ok := obj.(*corev1.Pod)
			if !ok {
				t.Fatalf("object = %T, want *corev1.Pod", obj)
			}
			if got == p {
				t.Error("row object is the input object, want a copy")
			}
			if got.APIVersion != "v1" || got.Kind != "Pod" || got.Spec.NodeName != "n1" {
				t.Errorf("object = %+v", got)
			}
		}},
		{metav1.IncludeNone, func(t *testing.T, obj runtime.Object) {
			if obj != nil {
				t.Errorf("object = %T, want nil", obj)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(string(tc.policy), func(t *testing.T) {
			tbl, err := Table(p, tc.policy, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(tbl.Rows[0].Object.Raw) != 0 {
				t.Error("row has raw bytes")
			}
			tc.check(t, tbl.Rows[0].Object.Object)
		})
	}
	if _, err := Table(p, "Everything", now); err == nil {
		t.Error("unknown includeObject policy: want error")
	}
}

func TestTableMeta(t *testing.T) {
	list := &corev1.PodList{
		ListMeta: metav1.ListMeta{ResourceVersion: "100", Continue: "token", RemainingItemCount: ptr(int64(7))},
		Items: []corev1.Pod{
			*pod(func(p *corev1.Pod) { p.Name = "b" }),
			*pod(func(p *corev1.Pod) { p.Name = "a" }),
			*pod(func(p *corev1.Pod) { p.Name = "c" }),
		},
	}
	tbl := mustTable(t, list)
	if tbl.APIVersion != "meta.k8s.io/v1" || tbl.Kind != "Table" {
		t.Errorf("type meta = %+v", tbl.TypeMeta)
	}
	if tbl.ResourceVersion != "100" || tbl.Continue != "token" || tbl.RemainingItemCount == nil || *tbl.RemainingItemCount != 7 {
		t.Errorf("list meta = %+v", tbl.ListMeta)
	}
	var names []string
	for _, r := range tbl.Rows {
		names = append(names, r.Cells[0].(string))
		if r.Object.Object.(*metav1.PartialObjectMetadata).Name != r.Cells[0] {
			t.Errorf("row %v carries metadata of %q", r.Cells[0], r.Object.Object.(*metav1.PartialObjectMetadata).Name)
		}
	}
	if want := []string{"b", "a", "c"}; !reflect.DeepEqual(names, want) {
		t.Errorf("rows = %q, want %q", names, want)
	}

	// A single object: one row, resourceVersion from the object.
	single := mustTable(t, &list.Items[0])
	if len(single.Rows) != 1 || single.ResourceVersion != "42" {
		t.Errorf("single: rows = %d, resourceVersion = %q", len(single.Rows), single.ResourceVersion)
	}

	// An empty list still gets its item type's columns.
	empty := mustTable(t, &batchv1.JobList{ListMeta: metav1.ListMeta{ResourceVersion: "5"}})
	if len(empty.Rows) != 0 || empty.ColumnDefinitions[1].Name != "Status" || empty.ResourceVersion != "5" {
		t.Errorf("empty job list: %+v", empty)
	}
	if empty.Rows == nil {
		t.Error("empty list: rows = nil, want empty slice (encodes as [])")
	}
}

func TestDefaultColumns(t *testing.T) {
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "reader", CreationTimestamp: metav1.NewTime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)))}}
	for _, obj := range []runtime.Object{role, &rbacv1.RoleList{Items: []rbacv1.Role{*role}}} {
		tbl := mustTable(t, obj)
		want := []metav1.TableColumnDefinition{
			{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
			{Name: "Created At", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
		}
		if !reflect.DeepEqual(tbl.ColumnDefinitions, want) {
			t.Errorf("%T columns = %+v", obj, tbl.ColumnDefinitions)
		}
		if got := tbl.Rows[0].Cells; !reflect.DeepEqual(got, []any{"reader", "2024-01-02T02:04:05Z"}) {
			t.Errorf("%T cells = %#v", obj, got)
		}
		if _, ok := tbl.Rows[0].Object.Object.(*metav1.PartialObjectMetadata); !ok {
			t.Errorf("%T row object = %T", obj, tbl.Rows[0].Object.Object)
		}
	}
}

// TestEveryPrinter checks each registered printer on a zero-valued object
// and a list: cells match columns, tables deep-copy (cells are JSON values)
// and encode, and the NAME column comes from the object's metadata.
func TestEveryPrinter(t *testing.T) {
	if len(registry) != 18 {
		t.Errorf("registry has %d printers, want 18", len(registry))
	}
	for typ, p := range registry {
		t.Run(typ.Elem().Name(), func(t *testing.T) {
			obj := reflect.New(typ.Elem()).Interface().(runtime.Object)
			reflect.ValueOf(obj).Elem().FieldByName("ObjectMeta").Set(reflect.ValueOf(metav1.ObjectMeta{Name: "x"}))
			tbl := mustTable(t, obj)
			cp := tbl.DeepCopy() // panics on non-JSON cell values
			if !reflect.DeepEqual(cp, tbl) {
				t.Error("deep copy differs")
			}
			data, err := json.Marshal(tbl)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), `"kind":"PartialObjectMetadata"`) {
				t.Errorf("encoded table lacks row metadata: %s", data)
			}
			for i, c := range p.columns {
				if c.Format == "name" && tbl.Rows[0].Cells[i] != "x" {
					t.Errorf("name cell = %#v", tbl.Rows[0].Cells[i])
				}
			}
			if p.gvk.Kind != typ.Elem().Name() {
				t.Errorf("gvk %v registered for %v", p.gvk, typ)
			}
			if p.gvk == (schema.GroupVersionKind{}) {
				t.Error("no gvk")
			}
		})
	}
}

func TestUnstructured(t *testing.T) {
	toU := func(obj runtime.Object) *unstructured.Unstructured {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			t.Fatal(err)
		}
		return &unstructured.Unstructured{Object: m}
	}
	crash := pod(func(p *corev1.Pod) {
		p.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: waiting("CrashLoopBackOff")}}
	})
	widget := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": map[string]any{"name": "w"}}}

	tests := []struct {
		name    string
		obj     runtime.Object
		columns []string
		rows    int
	}{
		{"pod", toU(crash), []string{"Name", "Ready", "Status"}, 1},
		{"pod list", &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "PodList"}, Items: []unstructured.Unstructured{*toU(crash)}}, []string{"Name", "Ready", "Status"}, 1},
		{"empty deployment list", &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "apps/v1", "kind": "DeploymentList"}}, []string{"Name", "Ready", "Up-to-date"}, 0},
		{"unknown kind", widget, []string{"Name", "Created At"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl := mustTable(t, tc.obj)
			if got := columnNames(tbl)[:len(tc.columns)]; !reflect.DeepEqual(got, tc.columns) {
				t.Errorf("columns = %q, want prefix %q", columnNames(tbl), tc.columns)
			}
			if len(tbl.Rows) != tc.rows {
				t.Fatalf("rows = %d, want %d", len(tbl.Rows), tc.rows)
			}
			if tc.rows > 0 && tc.columns[1] == "Ready" {
				if got := cell(t, tbl, "Status"); got != "CrashLoopBackOff" {
					t.Errorf("Status = %v", got)
				}
			}
		})
	}
}
