package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerConfig builds the CRI config of one attempt of a container.
func (a *Agent) containerConfig(ctx context.Context, pod *corev1.Pod, c *corev1.Container, attempt uint32, vols map[string]string) (*runtimeapi.ContainerConfig, error) {
	env, err := a.containerEnv(ctx, pod, c)
	if err != nil {
		return nil, err
	}
	lookup := func(k string) (string, bool) {
		for i := len(env) - 1; i >= 0; i-- {
			if env[i].Key == k {
				return string(env[i].Value), true
			}
		}
		return "", false
	}
	cmd := make([]string, len(c.Command))
	for i, s := range c.Command {
		cmd[i] = expand(s, lookup)
	}
	args := make([]string, len(c.Args))
	for i, s := range c.Args {
		args[i] = expand(s, lookup)
	}
	var mounts []*runtimeapi.Mount
	for _, m := range c.VolumeMounts {
		host, ok := vols[m.Name]
		if !ok {
			return nil, fmt.Errorf("volume %q of mount %s not found", m.Name, m.MountPath)
		}
		if m.SubPath != "" {
			host = filepath.Join(host, m.SubPath)
		}
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: m.MountPath, HostPath: host, Readonly: m.ReadOnly})
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:      &runtimeapi.ImageSpec{Image: c.Image},
		Command:    cmd,
		Args:       args,
		WorkingDir: c.WorkingDir,
		Stdin:      c.Stdin, // for attach
		StdinOnce:  c.StdinOnce,
		Tty:        c.TTY,
		Envs:       env,
		Mounts:     mounts,
		LogPath:    filepath.Join(c.Name, strconv.Itoa(int(attempt))+".log"),
		Labels: map[string]string{
			labelPodUID: string(pod.UID), labelPodName: pod.Name, labelPodNamespace: pod.Namespace, labelContainerName: c.Name,
		},
		Annotations: map[string]string{"io.kubernetes.container.restartCount": strconv.Itoa(int(attempt))},
		Linux:       &runtimeapi.LinuxContainerConfig{Resources: linuxResources(c), SecurityContext: securityContext(pod, c)},
	}
	return cfg, nil
}

// linuxResources turns limits into a CPU quota and a memory limit.
func linuxResources(c *corev1.Container) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{}
	if q, ok := c.Resources.Limits[corev1.ResourceCPU]; ok && !q.IsZero() {
		r.CpuPeriod = 100000
		r.CpuQuota = q.MilliValue() * r.CpuPeriod / 1000
	}
	if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		// cpu.shares as the kubelet computes them (1024 per core, at least 2).
		r.CpuShares = max(2, q.MilliValue()*1024/1000)
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && !q.IsZero() {
		r.MemoryLimitInBytes = q.Value()
	}
	return r
}

func securityContext(pod *corev1.Pod, c *corev1.Container) *runtimeapi.LinuxContainerSecurityContext {
	sc := &runtimeapi.LinuxContainerSecurityContext{}
	var user, group *int64
	if p := pod.Spec.SecurityContext; p != nil {
		user, group = p.RunAsUser, p.RunAsGroup
	}
	if s := c.SecurityContext; s != nil {
		if s.RunAsUser != nil {
			user = s.RunAsUser
		}
		if s.RunAsGroup != nil {
			group = s.RunAsGroup
		}
	}
	if user != nil {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *user}
	}
	if group != nil {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *group}
	}
	return sc
}

// containerEnv resolves env and envFrom as the kubelet does: envFrom first,
// then env in order, each value expanded against what came before.
func (a *Agent) containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container) ([]*runtimeapi.KeyValue, error) {
	var out []*runtimeapi.KeyValue
	set := map[string]int{}
	put := func(k, v string) {
		if i, ok := set[k]; ok {
			out[i].Value = []byte(v)
			return
		}
		set[k] = len(out)
		out = append(out, &runtimeapi.KeyValue{Key: k, Value: []byte(v)})
	}
	for _, ef := range c.EnvFrom {
		var data map[string]string
		switch {
		case ef.ConfigMapRef != nil:
			cm, err := a.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ef.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				if ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional {
					continue
				}
				return nil, fmt.Errorf("configmap %q not found", ef.ConfigMapRef.Name)
			}
			data = cm.Data
		case ef.SecretRef != nil:
			s, err := a.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ef.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				if ef.SecretRef.Optional != nil && *ef.SecretRef.Optional {
					continue
				}
				return nil, fmt.Errorf("secret %q not found", ef.SecretRef.Name)
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			put(ef.Prefix+k, data[k])
		}
	}
	lookup := func(k string) (string, bool) {
		if i, ok := set[k]; ok {
			return string(out[i].Value), true
		}
		return "", false
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			put(e.Name, expand(e.Value, lookup))
			continue
		}
		v, skip, err := a.envValueFrom(ctx, pod, c, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if !skip {
			put(e.Name, v)
		}
	}
	return out, nil
}

func (a *Agent) envValueFrom(ctx context.Context, pod *corev1.Pod, c *corev1.Container, vf *corev1.EnvVarSource) (string, bool, error) {
	switch {
	case vf.FieldRef != nil:
		v, err := fieldValue(pod, vf.FieldRef.FieldPath, a.ip)
		return v, false, err
	case vf.ResourceFieldRef != nil:
		return resourceValue(c, vf.ResourceFieldRef)
	case vf.ConfigMapKeyRef != nil:
		ref := vf.ConfigMapKeyRef
		optional := ref.Optional != nil && *ref.Optional
		cm, err := a.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			if optional {
				return "", true, nil
			}
			return "", false, fmt.Errorf("configmap %q not found", ref.Name)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if optional {
				return "", true, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return v, false, nil
	case vf.SecretKeyRef != nil:
		ref := vf.SecretKeyRef
		optional := ref.Optional != nil && *ref.Optional
		s, err := a.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			if optional {
				return "", true, nil
			}
			return "", false, fmt.Errorf("secret %q not found", ref.Name)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			if optional {
				return "", true, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
		}
		return string(v), false, nil
	}
	return "", true, nil
}

// fieldValue resolves a downward API field path.
func fieldValue(pod *corev1.Pod, path, nodeIP string) (string, error) {
	if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return pod.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return pod.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.podIP", "status.hostIPs", "status.podIPs":
		return nodeIP, nil
	}
	return "", fmt.Errorf("unsupported fieldPath %q", path)
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

// resourceValue resolves a resourceFieldRef, rounding up by its divisor as upstream.
func resourceValue(c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, bool, error) {
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	var q resource.Quantity
	var ok bool
	switch ref.Resource {
	case "limits.cpu":
		q, ok = c.Resources.Limits[corev1.ResourceCPU]
	case "limits.memory":
		q, ok = c.Resources.Limits[corev1.ResourceMemory]
	case "requests.cpu":
		q, ok = c.Resources.Requests[corev1.ResourceCPU]
	case "requests.memory":
		q, ok = c.Resources.Requests[corev1.ResourceMemory]
	case "limits.ephemeral-storage":
		q, ok = c.Resources.Limits[corev1.ResourceEphemeralStorage]
	case "requests.ephemeral-storage":
		q, ok = c.Resources.Requests[corev1.ResourceEphemeralStorage]
	default:
		return "", false, fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	if !ok {
		// Unset limits resolve to the node's allocatable in upstream; report 0 requests.
		return "0", false, nil
	}
	if strings.HasSuffix(ref.Resource, "cpu") {
		v := (q.MilliValue() + divisor.MilliValue() - 1) / divisor.MilliValue()
		return strconv.FormatInt(v, 10), false, nil
	}
	v := (q.Value() + divisor.Value() - 1) / divisor.Value()
	return strconv.FormatInt(v, 10), false, nil
}
