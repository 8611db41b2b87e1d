package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func (a *Agent) logDir(pod *corev1.Pod) string {
	return filepath.Join(a.opts.RootDir, "logs", pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))
}

// prepareVolumes makes each volume's content exist on the host and returns
// volume name -> host path. ConfigMap, Secret and downward API volumes are
// rewritten on every sync, so they follow their objects.
func (a *Agent) prepareVolumes(ctx context.Context, pod *corev1.Pod) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		dir := filepath.Join(a.podDir(pod.UID), "volumes", v.Name)
		switch {
		case v.HostPath != nil:
			if t := v.HostPath.Type; t != nil && (*t == corev1.HostPathDirectoryOrCreate) {
				if err := os.MkdirAll(v.HostPath.Path, 0o755); err != nil {
					return nil, fmt.Errorf("volume %s: %w", v.Name, err)
				}
			}
			out[v.Name] = v.HostPath.Path
			continue
		case v.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			_ = os.Chmod(dir, 0o777) // as upstream: any container user may write
		case v.ConfigMap != nil:
			cm, err := a.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && v.ConfigMap.Optional != nil && *v.ConfigMap.Optional {
					cm = &corev1.ConfigMap{}
				} else {
					return nil, fmt.Errorf("configmap %q not found", v.ConfigMap.Name)
				}
			}
			data := map[string][]byte{}
			for k, s := range cm.Data {
				data[k] = []byte(s)
			}
			for k, b := range cm.BinaryData {
				data[k] = b
			}
			if err := writeFiles(dir, data, v.ConfigMap.Items, v.ConfigMap.DefaultMode); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		case v.Secret != nil:
			s, err := a.client.CoreV1().Secrets(pod.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && v.Secret.Optional != nil && *v.Secret.Optional {
					s = &corev1.Secret{}
				} else {
					return nil, fmt.Errorf("secret %q not found", v.Secret.SecretName)
				}
			}
			if err := writeFiles(dir, s.Data, v.Secret.Items, v.Secret.DefaultMode); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		case v.DownwardAPI != nil:
			data := map[string][]byte{}
			var items []corev1.KeyToPath
			for _, it := range v.DownwardAPI.Items {
				if it.FieldRef == nil {
					continue
				}
				val, err := fieldValue(pod, it.FieldRef.FieldPath, a.ip)
				if err != nil {
					return nil, fmt.Errorf("volume %s: %w", v.Name, err)
				}
				data[it.Path] = []byte(val)
				items = append(items, corev1.KeyToPath{Key: it.Path, Path: it.Path, Mode: it.Mode})
			}
			if err := writeFiles(dir, data, items, v.DownwardAPI.DefaultMode); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		default:
			// Unsupported sources (projected, PVCs …) get an empty directory.
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		}
		out[v.Name] = dir
	}
	return out, nil
}

// writeFiles writes data (or the selected items) into dir, changing only
// files whose content or mode differ and removing keys that went away.
func writeFiles(dir string, data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32) error {
	mode := os.FileMode(0o644)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode)
	}
	want := map[string]struct {
		data []byte
		mode os.FileMode
	}{}
	if len(items) > 0 {
		for _, it := range items {
			m := mode
			if it.Mode != nil {
				m = os.FileMode(*it.Mode)
			}
			if d, ok := data[it.Key]; ok {
				want[it.Path] = struct {
					data []byte
					mode os.FileMode
				}{d, m}
			}
		}
	} else {
		for k, d := range data {
			want[k] = struct {
				data []byte
				mode os.FileMode
			}{d, mode}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for p, f := range want {
		if strings.Contains(p, "..") {
			return fmt.Errorf("path %q escapes the volume", p)
		}
		full := filepath.Join(dir, p)
		if cur, err := os.ReadFile(full); err == nil && bytes.Equal(cur, f.data) {
			if st, err := os.Stat(full); err == nil && st.Mode().Perm() == f.mode.Perm() {
				continue
			}
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		tmp := full + ".tmp"
		if err := os.WriteFile(tmp, f.data, f.mode); err != nil {
			return err
		}
		_ = os.Chmod(tmp, f.mode)
		if err := os.Rename(tmp, full); err != nil {
			return err
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if _, ok := want[e.Name()]; !ok && !e.IsDir() {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}
