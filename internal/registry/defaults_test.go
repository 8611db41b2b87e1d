package registry

import (
	"math"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ---- Fixtures shared with validation_test.go ----

func objMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default"}
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.25"}}}
}

func testPod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: objMeta("web"), Spec: podSpec()}
}

func template(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec()}
}

// appLabels is a fresh map each time: the code under test adds labels in place.
func appLabels() map[string]string { return map[string]string{"app": "web"} }

func testDeployment() *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: objMeta("web"), Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: appLabels()},
		Template: template(appLabels()),
	}}
}

func testJob() *batchv1.Job {
	t := template(nil)
	t.Spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{ObjectMeta: objMeta("pi"), Spec: batchv1.JobSpec{Template: t}}
}

// create runs the handler's create steps: uid, Default, PrepareForCreate.
func create(r *Resource, obj runtime.Object) runtime.Object {
	if o, ok := obj.(metav1.Object); ok {
		o.SetUID(types.UID("uid-1"))
	}
	if r.Default != nil {
		r.Default(obj)
	}
	if r.PrepareForCreate != nil {
		r.PrepareForCreate(obj)
	}
	return obj
}

// ---- Defaults ----

func TestPullPolicy(t *testing.T) {
	for image, want := range map[string]corev1.PullPolicy{
		"nginx":                        corev1.PullAlways, // untagged means latest
		"nginx:latest":                 corev1.PullAlways,
		"nginx:1.25":                   corev1.PullIfNotPresent,
		"localhost:5000/nginx":         corev1.PullAlways, // the colon is the registry's port
		"localhost:5000/team/app:v2":   corev1.PullIfNotPresent,
		"nginx@sha256:0123456789abcde": corev1.PullIfNotPresent, // pinned by digest
		"nginx:latest@sha256:01234567": corev1.PullAlways,
	} {
		if got := pullPolicyFor(image); got != want {
			t.Errorf("pullPolicyFor(%q) = %s, want %s", image, got, want)
		}
	}
}

func TestDefaultPod(t *testing.T) {
	pod := testPod()
	c := &pod.Spec.Containers[0]
	c.Image = "nginx"
	c.Ports = []corev1.ContainerPort{{ContainerPort: 80}}
	c.Env = []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}}
	c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}}
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox:1.36"}}
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "scratch"},
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{}}},
	}
	Pods.Default(pod)

	s := pod.Spec
	checks := []struct {
		name      string
		got, want any
	}{
		{"restartPolicy", s.RestartPolicy, corev1.RestartPolicyAlways},
		{"terminationGracePeriodSeconds", *s.TerminationGracePeriodSeconds, int64(30)},
		{"dnsPolicy", s.DNSPolicy, corev1.DNSClusterFirst},
		{"schedulerName", s.SchedulerName, "default-scheduler"},
		{"securityContext", *s.SecurityContext, corev1.PodSecurityContext{}},
		{"enableServiceLinks", *s.EnableServiceLinks, true},
		{"priority", *s.Priority, int32(0)},
		{"imagePullPolicy", s.Containers[0].ImagePullPolicy, corev1.PullAlways},
		{"init imagePullPolicy", s.InitContainers[0].ImagePullPolicy, corev1.PullIfNotPresent},
		{"init terminationMessagePath", s.InitContainers[0].TerminationMessagePath, "/dev/termination-log"},
		{"terminationMessagePolicy", s.Containers[0].TerminationMessagePolicy, corev1.TerminationMessageReadFile},
		{"port protocol", s.Containers[0].Ports[0].Protocol, corev1.ProtocolTCP},
		{"fieldRef apiVersion", s.Containers[0].Env[0].ValueFrom.FieldRef.APIVersion, "v1"},
		{"probe timeoutSeconds", s.Containers[0].LivenessProbe.TimeoutSeconds, int32(1)},
		{"probe periodSeconds", s.Containers[0].LivenessProbe.PeriodSeconds, int32(10)},
		{"probe successThreshold", s.Containers[0].LivenessProbe.SuccessThreshold, int32(1)},
		{"probe failureThreshold", s.Containers[0].LivenessProbe.FailureThreshold, int32(3)},
		{"httpGet scheme", s.Containers[0].LivenessProbe.HTTPGet.Scheme, corev1.URISchemeHTTP},
		{"httpGet path", s.Containers[0].LivenessProbe.HTTPGet.Path, "/"},
		{"requests from limits", s.Containers[0].Resources.Requests.Cpu().String(), "500m"},
		{"emptyDir", s.Volumes[0].EmptyDir != nil, true},
		{"configMap defaultMode", *s.Volumes[1].ConfigMap.DefaultMode, int32(420)},
		{"secret defaultMode", *s.Volumes[2].Secret.DefaultMode, int32(420)},
	}
	for _, c := range checks {
		if !equality.Semantic.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(s.Tolerations) != 0 {
		t.Errorf("tolerations defaulted: %v (not this package's job)", s.Tolerations)
	}
}

// Templates get the pod-spec defaults but not the Pod-only ones.
func TestDefaultTemplatesShareThePodSpecDefaulter(t *testing.T) {
	d := testDeployment()
	d.Spec.Template.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}
	Deployments.Default(d)
	s := d.Spec.Template.Spec
	if s.RestartPolicy != corev1.RestartPolicyAlways || s.SchedulerName != "default-scheduler" ||
		s.Containers[0].ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("template not defaulted: %+v", s)
	}
	if s.EnableServiceLinks != nil || s.Priority != nil || s.Containers[0].Resources.Requests != nil {
		t.Errorf("template got Pod-only defaults: %+v", s)
	}
}

func TestDefaultDeployment(t *testing.T) {
	d := testDeployment()
	Deployments.Default(d)
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
		*ru.MaxSurge != intstr.FromString("25%") || *ru.MaxUnavailable != intstr.FromString("25%") {
		t.Errorf("strategy = %+v", d.Spec.Strategy)
	}
	if *d.Spec.Replicas != 1 || *d.Spec.RevisionHistoryLimit != 10 || *d.Spec.ProgressDeadlineSeconds != 600 {
		t.Errorf("spec = %+v", d.Spec)
	}

	// Recreate gets no rolling-update parameters.
	d = testDeployment()
	d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
	Deployments.Default(d)
	if d.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("Recreate got rollingUpdate %+v", d.Spec.Strategy.RollingUpdate)
	}
}

func TestDefaultReplicationController(t *testing.T) {
	tmpl := template(appLabels())
	rc := &corev1.ReplicationController{ObjectMeta: objMeta("rc"), Spec: corev1.ReplicationControllerSpec{Template: &tmpl}}
	ReplicationControllers.Default(rc)
	if *rc.Spec.Replicas != 1 || rc.Spec.Selector["app"] != "web" || rc.Labels["app"] != "web" {
		t.Errorf("rc = %+v", rc)
	}
}

func TestDefaultJob(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	tests := []struct {
		name                      string
		completions, parallelism  *int32
		backoffLimitPerIndex      *int32
		wantCompletions           *int32
		wantParallelism, wantBack int32
	}{
		{name: "both unset", wantCompletions: i32(1), wantParallelism: 1, wantBack: 6},
		{name: "work queue", parallelism: i32(5), wantParallelism: 5, wantBack: 6},
		{name: "fixed count", completions: i32(8), wantCompletions: i32(8), wantParallelism: 1, wantBack: 6},
		{name: "per-index backoff", completions: i32(3), backoffLimitPerIndex: i32(1), wantCompletions: i32(3), wantParallelism: 1, wantBack: math.MaxInt32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := testJob()
			job.Spec.Completions, job.Spec.Parallelism, job.Spec.BackoffLimitPerIndex = tt.completions, tt.parallelism, tt.backoffLimitPerIndex
			Jobs.Default(job)
			s := job.Spec
			if !equality.Semantic.DeepEqual(s.Completions, tt.wantCompletions) || *s.Parallelism != tt.wantParallelism || *s.BackoffLimit != tt.wantBack {
				t.Errorf("completions=%v parallelism=%d backoffLimit=%d", s.Completions, *s.Parallelism, *s.BackoffLimit)
			}
			if *s.CompletionMode != batchv1.NonIndexedCompletion || *s.Suspend || *s.PodReplacementPolicy != batchv1.TerminatingOrFailed {
				t.Errorf("spec = %+v", s)
			}
		})
	}
}

func TestPrepareJobGeneratesSelector(t *testing.T) {
	job := create(Jobs, testJob()).(*batchv1.Job)
	want := map[string]string{batchv1.ControllerUidLabel: "uid-1"}
	if !equality.Semantic.DeepEqual(job.Spec.Selector.MatchLabels, want) {
		t.Errorf("selector = %v, want %v", job.Spec.Selector.MatchLabels, want)
	}
	for k, v := range map[string]string{
		batchv1.ControllerUidLabel: "uid-1", "controller-uid": "uid-1", batchv1.JobNameLabel: "pi", "job-name": "pi",
	} {
		if job.Spec.Template.Labels[k] != v || job.Labels[k] != v {
			t.Errorf("label %s: template %q, job %q, want %q", k, job.Spec.Template.Labels[k], job.Labels[k], v)
		}
	}
	if errs := Jobs.Validate(job); len(errs) > 0 {
		t.Errorf("generated job invalid: %v", errs)
	}

	// With manualSelector the user's selector stands.
	manual := testJob()
	manual.Spec.ManualSelector = new(true)
	manual.Spec.Selector = &metav1.LabelSelector{MatchLabels: appLabels()}
	manual.Spec.Template.Labels = appLabels()
	create(Jobs, manual)
	if !equality.Semantic.DeepEqual(manual.Spec.Selector.MatchLabels, appLabels()) || len(manual.Spec.Template.Labels) != 1 {
		t.Errorf("manual selector changed: %v / %v", manual.Spec.Selector, manual.Spec.Template.Labels)
	}
}

func TestDefaultCronJob(t *testing.T) {
	cj := &batchv1.CronJob{ObjectMeta: objMeta("cj"), Spec: batchv1.CronJobSpec{Schedule: "*/5 * * * *",
		JobTemplate: batchv1.JobTemplateSpec{Spec: testJob().Spec}}}
	CronJobs.Default(cj)
	s := cj.Spec
	if s.ConcurrencyPolicy != batchv1.AllowConcurrent || *s.Suspend || *s.SuccessfulJobsHistoryLimit != 3 || *s.FailedJobsHistoryLimit != 1 {
		t.Errorf("spec = %+v", s)
	}
	if s.JobTemplate.Spec.Template.Spec.SchedulerName != "default-scheduler" {
		t.Errorf("job template's pod spec not defaulted")
	}
}

func TestDefaultService(t *testing.T) {
	tests := []struct {
		typ     corev1.ServiceType
		wantETP corev1.ServiceExternalTrafficPolicy
		wantITP bool
	}{
		{"", "", true},
		{corev1.ServiceTypeNodePort, corev1.ServiceExternalTrafficPolicyCluster, true},
		{corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyCluster, true},
		{corev1.ServiceTypeExternalName, "", false},
	}
	for _, tt := range tests {
		svc := &corev1.Service{ObjectMeta: objMeta("svc"), Spec: corev1.ServiceSpec{Type: tt.typ,
			Ports: []corev1.ServicePort{{Port: 80}, {Name: "named", Port: 81, TargetPort: intstr.FromString("http")}}}}
		Services.Default(svc)
		s := svc.Spec
		if tt.typ == "" && s.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("type = %q", s.Type)
		}
		if s.SessionAffinity != corev1.ServiceAffinityNone || s.Ports[0].Protocol != corev1.ProtocolTCP ||
			s.Ports[0].TargetPort != intstr.FromInt32(80) || s.Ports[1].TargetPort != intstr.FromString("http") {
			t.Errorf("%s: spec = %+v", tt.typ, s)
		}
		if s.ExternalTrafficPolicy != tt.wantETP || (s.InternalTrafficPolicy != nil) != tt.wantITP {
			t.Errorf("%s: traffic policies = %q / %v", tt.typ, s.ExternalTrafficPolicy, s.InternalTrafficPolicy)
		}
		if s.ClusterIP != "" {
			t.Errorf("clusterIP allocated here: %q", s.ClusterIP)
		}
	}
}

func TestNamespaceFinalizerOnlyOnCreate(t *testing.T) {
	ns := create(Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}).(*corev1.Namespace)
	if !equality.Semantic.DeepEqual(ns.Spec.Finalizers, []corev1.FinalizerName{"kubernetes"}) ||
		ns.Status.Phase != corev1.NamespaceActive || ns.Labels[corev1.LabelMetadataName] != "team" {
		t.Errorf("namespace = %+v", ns)
	}
	// The namespace controller removes the finalizer; an update must not restore it.
	ns.Spec.Finalizers = nil
	Namespaces.Default(ns)
	if len(ns.Spec.Finalizers) != 0 {
		t.Errorf("Default restored finalizers %v", ns.Spec.Finalizers)
	}
}

func TestDefaultSecret(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: objMeta("s"), StringData: map[string]string{"user": "admin"}, Data: map[string][]byte{"pass": []byte("x")}}
	Secrets.Default(s)
	if s.Type != corev1.SecretTypeOpaque || string(s.Data["user"]) != "admin" || string(s.Data["pass"]) != "x" || s.StringData != nil {
		t.Errorf("secret = %+v", s)
	}
}

func TestDefaultEndpointPorts(t *testing.T) {
	ep := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Port: 80}}}}}
	Endpoints.Default(ep)
	es := &discoveryv1.EndpointSlice{Ports: []discoveryv1.EndpointPort{{}}}
	EndpointSlices.Default(es)
	if ep.Subsets[0].Ports[0].Protocol != corev1.ProtocolTCP || *es.Ports[0].Protocol != corev1.ProtocolTCP || *es.Ports[0].Name != "" {
		t.Errorf("endpoints %+v, slice %+v", ep.Subsets[0].Ports, es.Ports)
	}
}

func TestPodsGetDefaultTolerations(t *testing.T) {
	p := create(Pods, testPod()).(*corev1.Pod)
	got := map[string]int64{}
	for _, tol := range p.Spec.Tolerations {
		if tol.Effect == corev1.TaintEffectNoExecute && tol.TolerationSeconds != nil {
			got[tol.Key] = *tol.TolerationSeconds
		}
	}
	if got[corev1.TaintNodeNotReady] != 300 || got[corev1.TaintNodeUnreachable] != 300 || p.Status.Phase != corev1.PodPending {
		t.Fatalf("tolerations %v phase %q; want 300s not-ready and unreachable, Pending", got, p.Status.Phase)
	}
	// A pod that tolerates the taint already keeps its own toleration.
	own := testPod()
	own.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}
	p = create(Pods, own).(*corev1.Pod)
	n := 0
	for _, tol := range p.Spec.Tolerations {
		if tol.Key == corev1.TaintNodeUnreachable {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("unreachable tolerations: %d, want the pod's own only", n)
	}
}
