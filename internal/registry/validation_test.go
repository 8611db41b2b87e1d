package registry

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// summary renders errors as "path: type" for comparison, e.g.
// "spec.containers: Required value".
func summary(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field+": "+e.Type.String())
	}
	return out
}

// expectErrors checks that errs are exactly want ("path: type"); and, when
// detail is set, that some error says it.
func expectErrors(t *testing.T, errs field.ErrorList, want []string, detail string) {
	t.Helper()
	got := summary(errs)
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n got %q\nwant %q\nfull: %v", got, want, errs)
	}
	if detail != "" && !slices.ContainsFunc(errs, func(e *field.Error) bool { return strings.Contains(e.Detail, detail) }) {
		t.Errorf("no error says %q: %v", detail, errs)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		res    *Resource
		obj    runtime.Object
		want   []string
		detail string
	}{
		// Pods
		{name: "valid pod", res: Pods, obj: testPod()},
		{name: "pod without containers", res: Pods, obj: pod(func(p *corev1.Pod) { p.Spec.Containers = nil }),
			want: []string{"spec.containers: Required value"}},
		{name: "container name not a DNS label", res: Pods, obj: pod(func(p *corev1.Pod) { p.Spec.Containers[0].Name = "App_1" }),
			want: []string{"spec.containers[0].name: Invalid value"}},
		{name: "duplicate container name, across init containers", res: Pods,
			obj:  pod(func(p *corev1.Pod) { p.Spec.InitContainers = []corev1.Container{{Name: "app", Image: "busybox"}} }),
			want: []string{"spec.containers[0].name: Duplicate value"}},
		{name: "image required", res: Pods, obj: pod(func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }),
			want: []string{"spec.containers[0].image: Required value"}},
		{name: "bad restart policy", res: Pods, obj: pod(func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }),
			want: []string{"spec.restartPolicy: Unsupported value"}},
		{name: "port out of range", res: Pods, obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 70000}, {ContainerPort: 0}}
		}), want: []string{"spec.containers[0].ports[0].containerPort: Invalid value", "spec.containers[0].ports[1].containerPort: Required value"}},
		{name: "duplicate volume, mount of a missing one", res: Pods, obj: pod(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data"}, {Name: "data"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "logs", MountPath: "/logs"}}
		}), want: []string{"spec.volumes[1].name: Duplicate value", "spec.containers[0].volumeMounts[1].name: Not found"}},
		{name: "two volume sources", res: Pods, obj: pod(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{}, ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}}}
		}), want: []string{"spec.volumes[0].configMap: Forbidden"}},
		{name: "negative quantity, request above limit", res: Pods, obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("-1Gi")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
			}
		}), want: []string{
			"spec.containers[0].resources.limits[memory]: Invalid value",
			"spec.containers[0].resources.requests[memory]: Invalid value", // defaulted from the limit
			"spec.containers[0].resources.requests: Invalid value",
		},
			detail: "must be less than or equal to cpu limit of 1"},
		{name: "bad probe numbers", res: Pods, obj: pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{
				ProbeHandler:     corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}},
				PeriodSeconds:    -1,
				SuccessThreshold: 2,
			}
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{}
		}), want: []string{
			"spec.containers[0].livenessProbe.periodSeconds: Invalid value",
			"spec.containers[0].livenessProbe.successThreshold: Invalid value",
			"spec.containers[0].readinessProbe: Required value",
		}},
		{name: "plain init container may not be probed", res: Pods, obj: pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", ReadinessProbe: &corev1.Probe{}}}
		}), want: []string{"spec.initContainers[0].readinessProbe: Forbidden"}},

		// Workloads
		{name: "valid deployment", res: Deployments, obj: testDeployment()},
		{name: "deployment selector does not match", res: Deployments, obj: deployment(func(d *appsv1.Deployment) {
			d.Spec.Template.Labels = map[string]string{"app": "other"}
		}), want: []string{"spec.template.metadata.labels: Invalid value"}, detail: "`selector` does not match template `labels`"},
		{name: "deployment needs a selector, restartPolicy Always", res: Deployments, obj: deployment(func(d *appsv1.Deployment) {
			d.Spec.Selector = nil
			d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		}), want: []string{"spec.selector: Required value", "spec.template.metadata.labels: Invalid value", "spec.template.spec.restartPolicy: Unsupported value"}},
		{name: "deployment negative replicas, zero surge and unavailable", res: Deployments, obj: deployment(func(d *appsv1.Deployment) {
			d.Spec.Replicas = new(int32(-1))
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: new(intstr.FromInt32(0)), MaxUnavailable: new(intstr.FromString("0%"))}
		}), want: []string{"spec.replicas: Invalid value", "spec.strategy.rollingUpdate.maxUnavailable: Invalid value"}},
		{name: "deployment bad strategy type", res: Deployments, obj: deployment(func(d *appsv1.Deployment) { d.Spec.Strategy.Type = "BlueGreen" }),
			want: []string{"spec.strategy.type: Unsupported value"}},
		{name: "replica set template from a pod spec", res: ReplicaSets, obj: &appsv1.ReplicaSet{ObjectMeta: objMeta("rs"),
			Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: appLabels()}, Template: template(appLabels())}}},
		{name: "rc needs template", res: ReplicationControllers, obj: &corev1.ReplicationController{ObjectMeta: objMeta("rc"),
			Spec: corev1.ReplicationControllerSpec{Selector: appLabels()}}, want: []string{"spec.template: Required value"}},
		{name: "valid job", res: Jobs, obj: testJob()},
		{name: "job restartPolicy must not be Always", res: Jobs, obj: job(func(j *batchv1.Job) {
			j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		}), want: []string{"spec.template.spec.restartPolicy: Unsupported value"}},
		{name: "job negative counts", res: Jobs, obj: job(func(j *batchv1.Job) {
			j.Spec.Completions, j.Spec.Parallelism, j.Spec.BackoffLimit = new(int32(-1)), new(int32(-1)), new(int32(-1))
		}), want: []string{"spec.completions: Invalid value", "spec.parallelism: Invalid value", "spec.backoffLimit: Invalid value"}},
		{name: "job selector without manualSelector", res: Jobs, obj: job(func(j *batchv1.Job) {
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: appLabels()}
			j.Spec.Template.Labels = map[string]string{"app": "web"}
		}), want: []string{"spec.selector: Invalid value"}, detail: "`selector` not auto-generated"},
		{name: "valid cron job", res: CronJobs, obj: cronJob("30 2 * * mon-fri")},
		{name: "cron job descriptor", res: CronJobs, obj: cronJob("@every 1h30m")},
		{name: "cron job steps and lists", res: CronJobs, obj: cronJob("*/15 0-6,22 1 JAN,jul ?")},
		{name: "cron job empty schedule", res: CronJobs, obj: cronJob(""), want: []string{"spec.schedule: Required value"}},
		{name: "cron job four fields", res: CronJobs, obj: cronJob("* * * *"), want: []string{"spec.schedule: Invalid value"},
			detail: "expected exactly 5 fields, found 4: [* * * *]"},
		{name: "cron job minute out of range", res: CronJobs, obj: cronJob("60 * * * *"), want: []string{"spec.schedule: Invalid value"},
			detail: "end of range (60) above maximum (59): 60"},
		{name: "cron job garbage", res: CronJobs, obj: cronJob("every day"), want: []string{"spec.schedule: Invalid value"}},
		{name: "cron job bad descriptor", res: CronJobs, obj: cronJob("@fortnightly"), want: []string{"spec.schedule: Invalid value"},
			detail: "unrecognized descriptor: @fortnightly"},
		{name: "cron job TZ in schedule", res: CronJobs, obj: cronJob("TZ=UTC 0 * * * *"), want: []string{"spec.schedule: Invalid value"},
			detail: "use timeZone field instead"},
		{name: "cron job time zone", res: CronJobs, obj: withTimeZone(cronJob("0 9 * * *"), "America/New_York")},
		{name: "cron job unknown time zone", res: CronJobs, obj: withTimeZone(cronJob("0 9 * * *"), "Mars/Olympus"),
			want: []string{"spec.timeZone: Invalid value"}, detail: "unknown time zone Mars/Olympus"},
		{name: "cron job Local time zone", res: CronJobs, obj: withTimeZone(cronJob("0 9 * * *"), "Local"),
			want: []string{"spec.timeZone: Invalid value"}, detail: "must be an explicit time zone"},

		// Services
		{name: "valid service", res: Services, obj: service(nil)},
		{name: "headless service needs no ports", res: Services, obj: service(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.Ports = corev1.ClusterIPNone, nil
		})},
		{name: "external name", res: Services, obj: service(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.Ports = corev1.ServiceTypeExternalName, "db.example.com.", nil
		})},
		{name: "service ports required", res: Services, obj: service(func(s *corev1.Service) { s.Spec.Ports = nil }),
			want: []string{"spec.ports: Required value"}},
		{name: "service port names", res: Services, obj: service(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "http", Port: 81}, {Port: 82}, {Name: "big", Port: 70000}}
		}), want: []string{
			"spec.ports[1].name: Duplicate value", "spec.ports[2].name: Required value",
			"spec.ports[3].port: Invalid value", "spec.ports[3].targetPort: Invalid value", // defaulted from port
		}},
		{name: "service type and protocol", res: Services, obj: service(func(s *corev1.Service) {
			s.Spec.Type = "Magic"
			s.Spec.Ports[0].Protocol = "ICMP"
		}), want: []string{"spec.type: Unsupported value", "spec.ports[0].protocol: Unsupported value"}},
		{name: "service selector labels", res: Services, obj: service(func(s *corev1.Service) { s.Spec.Selector = map[string]string{"a b": "c"} }),
			want: []string{"spec.selector: Invalid value"}},

		// Config
		{name: "configmap keys", res: ConfigMaps, obj: &corev1.ConfigMap{ObjectMeta: objMeta("cm"),
			Data: map[string]string{"ok.key": "1", "bad/key": "2"}}, want: []string{"data[bad/key]: Invalid value"}},
		{name: "configmap too big", res: ConfigMaps, obj: &corev1.ConfigMap{ObjectMeta: objMeta("cm"),
			Data: map[string]string{"big": strings.Repeat("x", corev1.MaxSecretSize+1)}}, want: []string{"[]: Too long"}}, // the whole object
		{name: "secret keys and size", res: Secrets, obj: &corev1.Secret{ObjectMeta: objMeta("s"),
			Data: map[string][]byte{"..": nil, "big": make([]byte, corev1.MaxSecretSize+1)}},
			want: []string{"data[..]: Invalid value", "data: Too long"}},
		{name: "tls secret needs its keys", res: Secrets, obj: &corev1.Secret{ObjectMeta: objMeta("s"), Type: corev1.SecretTypeTLS},
			want: []string{"data[tls.crt]: Required value", "data[tls.key]: Required value"}},

		// Cluster objects and the rest
		{name: "namespace", res: Namespaces, obj: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}},
		{name: "namespace odd finalizer", res: Namespaces, obj: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"},
			Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"custom"}}}, want: []string{"spec.finalizers: Invalid value"}},
		{name: "node taints", res: Nodes, obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{
			{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule},
			{Key: "dedicated", Value: "cpu", Effect: corev1.TaintEffectNoSchedule},
			{Key: "x", Effect: "Sometimes"},
		}}}, want: []string{"spec.taints[1]: Duplicate value", "spec.taints[2].effect: Unsupported value"}},
		{name: "endpoints", res: Endpoints, obj: &corev1.Endpoints{ObjectMeta: objMeta("svc"), Subsets: []corev1.EndpointSubset{
			{Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}, {IP: "127.0.0.1"}, {IP: "nope"}}, Ports: []corev1.EndpointPort{{Port: 80}}},
			{},
		}}, want: []string{"subsets[0].addresses[1].ip: Invalid value", "subsets[0].addresses[2].ip: Invalid value", "subsets[1]: Required value"}},
		{name: "endpoint slice", res: EndpointSlices, obj: &discoveryv1.EndpointSlice{ObjectMeta: objMeta("svc-1"),
			AddressType: discoveryv1.AddressTypeIPv4, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}}}},
		{name: "endpoint slice address type", res: EndpointSlices, obj: &discoveryv1.EndpointSlice{ObjectMeta: objMeta("svc-1"),
			AddressType: "IPv5", Endpoints: []discoveryv1.Endpoint{{}}},
			want: []string{"addressType: Unsupported value", "endpoints[0].addresses: Required value"}},
		{name: "ingress", res: Ingresses, obj: ingress(networkingv1.PathTypePrefix, "/api", "api", 80)},
		{name: "ingress pathType required", res: Ingresses, obj: ingress("", "/", "api", 80),
			want: []string{"spec.rules[0].http.paths[0].pathType: Required value"}},
		{name: "ingress bad path and backend", res: Ingresses, obj: ingress(networkingv1.PathTypeExact, "api/../x", "", 0),
			want: []string{
				"spec.rules[0].http.paths[0].path: Invalid value", // not absolute
				"spec.rules[0].http.paths[0].path: Invalid value", // contains /../
				"spec.rules[0].http.paths[0].backend.service.name: Required value",
				"spec.rules[0].http.paths[0].backend: Required value",
			}},
		{name: "ingress pathType unknown", res: Ingresses, obj: ingress("Regex", "/", "api", 80),
			want: []string{"spec.rules[0].http.paths[0].pathType: Unsupported value"}},
		{name: "ingress class", res: IngressClasses, obj: &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
			Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}}},
		{name: "ingress class controller", res: IngressClasses, obj: &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
			Spec: networkingv1.IngressClassSpec{Controller: "nginx"}}, want: []string{"spec.controller: Invalid value"}},
		{name: "lease", res: Leases, obj: &coordinationv1.Lease{ObjectMeta: objMeta("l"),
			Spec: coordinationv1.LeaseSpec{LeaseDurationSeconds: new(int32(0)), LeaseTransitions: new(int32(-1))}},
			want: []string{"spec.leaseDurationSeconds: Invalid value", "spec.leaseTransitions: Invalid value"}},
		{name: "event", res: Events, obj: &corev1.Event{ObjectMeta: objMeta("web.1"),
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"}, Reason: "Started"}},
		{name: "event involvedObject required", res: Events, obj: &corev1.Event{ObjectMeta: objMeta("e")},
			want: []string{"involvedObject: Required value"}},
		{name: "event in another namespace", res: Events, obj: &corev1.Event{ObjectMeta: objMeta("e"),
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "kube-system", Name: "web"}},
			want: []string{"involvedObject.namespace: Invalid value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := create(tt.res, tt.obj)
			expectErrors(t, tt.res.Validate(obj), tt.want, tt.detail)
		})
	}
}

// update creates old, applies change to a copy, and returns the update
// errors the handler would report (Validate and ValidateUpdate).
func update[T runtime.Object](r *Resource, old T, change func(T)) field.ErrorList {
	create(r, old)
	obj := old.DeepCopyObject().(T)
	change(obj)
	if r.Default != nil {
		r.Default(obj)
	}
	var errs field.ErrorList
	if r.Validate != nil {
		errs = append(errs, r.Validate(obj)...)
	}
	if r.ValidateUpdate != nil {
		errs = append(errs, r.ValidateUpdate(obj, old)...)
	}
	return errs
}

func TestValidateUpdate(t *testing.T) {
	const podMsg = "pod updates may not change fields other than `spec.containers[*].image`"
	tests := []struct {
		name   string
		errs   field.ErrorList
		want   []string
		detail string
	}{
		{name: "pod image may change",
			errs: update(Pods, testPod(), func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.27" })},
		{name: "pod command may not",
			errs: update(Pods, testPod(), func(p *corev1.Pod) { p.Spec.Containers[0].Command = []string{"sleep", "1"} }),
			want: []string{"spec: Forbidden"}, detail: podMsg},
		{name: "pod may not lose a container",
			errs: update(Pods, testPod(), func(p *corev1.Pod) { p.Spec.Containers = nil }),
			want: []string{"spec.containers: Required value", "spec.containers: Forbidden"}, detail: "may not add or remove containers"},
		{name: "pod activeDeadlineSeconds may shrink",
			errs: update(Pods, pod(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(60)) }),
				func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(30)) })},
		{name: "pod activeDeadlineSeconds may not grow",
			errs: update(Pods, pod(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(60)) }),
				func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = new(int64(90)) }),
			want: []string{"spec.activeDeadlineSeconds: Invalid value"}},
		{name: "pod tolerations may be added",
			errs: update(Pods, testPod(), func(p *corev1.Pod) {
				p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists})
			})},
		{name: "pod tolerations may not be removed",
			errs: update(Pods, pod(func(p *corev1.Pod) {
				p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}}
			}), func(p *corev1.Pod) { p.Spec.Tolerations = nil }),
			want: []string{"spec.tolerations: Forbidden"}},
		{name: "pod labels may change",
			errs: update(Pods, testPod(), func(p *corev1.Pod) { p.Labels = map[string]string{"tier": "web"} })},
		{name: "deployment selector immutable",
			errs: update(Deployments, testDeployment(), func(d *appsv1.Deployment) {
				d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "v": "2"}}
				d.Spec.Template.Labels = d.Spec.Selector.MatchLabels
			}), want: []string{"spec.selector: Invalid value"}, detail: "field is immutable"},
		{name: "deployment template may change",
			errs: update(Deployments, testDeployment(), func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:2" })},
		{name: "job template immutable",
			errs: update(Jobs, testJob(), func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "perl:2" }),
			want: []string{"spec.template: Invalid value"}, detail: "field is immutable"},
		{name: "job completions immutable",
			errs: update(Jobs, testJob(), func(j *batchv1.Job) { j.Spec.Completions = new(int32(3)) }),
			want: []string{"spec.completions: Invalid value"}},
		{name: "indexed job completions change with parallelism",
			errs: update(Jobs, job(func(j *batchv1.Job) {
				j.Spec.CompletionMode = new(batchv1.IndexedCompletion)
				j.Spec.Completions, j.Spec.Parallelism = new(int32(2)), new(int32(2))
			}), func(j *batchv1.Job) { j.Spec.Completions, j.Spec.Parallelism = new(int32(4)), new(int32(4)) })},
		{name: "job suspend may change",
			errs: update(Jobs, testJob(), func(j *batchv1.Job) { j.Spec.Suspend = new(true) })},
		{name: "service clusterIP immutable",
			errs: update(Services, service(func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.10" }),
				func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.11" }),
			want: []string{"spec.clusterIP: Invalid value"}, detail: "field is immutable"},
		{name: "service ports may change",
			errs: update(Services, service(func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.10" }),
				func(s *corev1.Service) { s.Spec.Ports[0].Port = 8080 })},
		{name: "immutable configmap data",
			errs: update(ConfigMaps, &corev1.ConfigMap{ObjectMeta: objMeta("cm"), Immutable: new(true), Data: map[string]string{"a": "1"}},
				func(c *corev1.ConfigMap) { c.Data["a"] = "2" }),
			want: []string{"data: Forbidden"}},
		{name: "mutable configmap data",
			errs: update(ConfigMaps, &corev1.ConfigMap{ObjectMeta: objMeta("cm"), Data: map[string]string{"a": "1"}},
				func(c *corev1.ConfigMap) { c.Data["a"] = "2" })},
		{name: "immutable secret stays immutable",
			errs: update(Secrets, &corev1.Secret{ObjectMeta: objMeta("s"), Immutable: new(true)},
				func(s *corev1.Secret) { s.Immutable = nil }),
			want: []string{"immutable: Forbidden"}},
		{name: "secret type immutable",
			errs: update(Secrets, &corev1.Secret{ObjectMeta: objMeta("s")},
				func(s *corev1.Secret) {
					s.Type = corev1.SecretTypeBasicAuth
					s.Data = map[string][]byte{"username": nil}
				}),
			want: []string{"type: Invalid value"}},
		{name: "namespace finalize",
			errs: update(Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}},
				func(n *corev1.Namespace) { n.Spec.Finalizers = nil })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expectErrors(t, tt.errs, tt.want, tt.detail) })
	}
}

func TestParseCronSchedule(t *testing.T) {
	for spec, wantErr := range map[string]string{
		"0 0 * * *":          "",
		"@daily":             "",
		"@every 5m":          "",
		"0 9-17/2 * * 1-5":   "",
		"5/10 * * * *":       "",
		"0 0 31 dec sun":     "",
		"* * * * * *":        "expected exactly 5 fields, found 6",
		"0 24 * * *":         "end of range (24) above maximum (23): 24",
		"0 0 0 * *":          "beginning of range (0) below minimum (1): 0",
		"5-1 * * * *":        "beginning of range (5) beyond end of range (1): 5-1",
		"*/0 * * * *":        "step of range should be a positive number: */0",
		"1-2-3 * * * *":      "too many hyphens: 1-2-3",
		"x * * * *":          "failed to parse int from x",
		"0 0 * foo *":        "failed to parse int from foo",
		"@every fortnight":   "failed to parse duration @every fortnight",
		"1/2/3 * * * *":      "too many slashes: 1/2/3",
		"CRON_TZ=UTC @daily": "",
	} {
		err := parseCronSchedule(spec)
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%q: unexpected error %v", spec, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%q: error %v, want %q", spec, err, wantErr)
		}
	}
}

// ---- Builders: a valid object, changed by f ----

func pod(f func(*corev1.Pod)) *corev1.Pod {
	p := testPod()
	f(p)
	return p
}

func deployment(f func(*appsv1.Deployment)) *appsv1.Deployment {
	d := testDeployment()
	f(d)
	return d
}

func job(f func(*batchv1.Job)) *batchv1.Job {
	j := testJob()
	f(j)
	return j
}

func cronJob(schedule string) *batchv1.CronJob {
	return &batchv1.CronJob{ObjectMeta: objMeta("report"), Spec: batchv1.CronJobSpec{
		Schedule: schedule, JobTemplate: batchv1.JobTemplateSpec{Spec: testJob().Spec}}}
}

func withTimeZone(cj *batchv1.CronJob, tz string) *batchv1.CronJob {
	cj.Spec.TimeZone = &tz
	return cj
}

func service(f func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: objMeta("web"), Spec: corev1.ServiceSpec{
		Selector: appLabels(), Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}}}
	if f != nil {
		f(s)
	}
	return s
}

func ingress(pathType networkingv1.PathType, path, svc string, port int32) *networkingv1.Ingress {
	var pt *networkingv1.PathType
	if pathType != "" {
		pt = &pathType
	}
	return &networkingv1.Ingress{ObjectMeta: objMeta("web"), Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
		Host: "example.com",
		IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
			Path: path, PathType: pt,
			Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
				Name: svc, Port: networkingv1.ServiceBackendPort{Number: port}}},
		}}}},
	}}}}
}

// A pod stored before a default existed may still be updated where allowed:
// the stored object is compared as if defaulted, as upstream reads it.
func TestPodUpdateAgainstUndefaultedStoredPod(t *testing.T) {
	old := testPod() // never defaulted
	obj := old.DeepCopy()
	obj.Spec.Containers[0].Image = "nginx:1.27"
	Pods.Default(obj)
	expectErrors(t, Pods.ValidateUpdate(obj, old), nil, "")
	if old.Spec.RestartPolicy != "" {
		t.Errorf("ValidateUpdate changed the stored pod")
	}
}
