package apiserver

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiff-sh/skiff/internal/registry"
)

// kubeletURL finds where the agent of a pod's node listens.
func (s *Server) kubeletURL(ctx context.Context, nodeName string) (*url.URL, error) {
	nh := s.byGR[registry.Nodes.GR()]
	obj, err := nh.store.GetAt(ctx, nh.store.Key("", nodeName), nodeName, "0")
	if err != nil {
		return nil, err
	}
	return nodeKubeletURL(obj.(*corev1.Node))
}

// nodeKubeletURL is where a node's agent listens, from its status.
func nodeKubeletURL(node *corev1.Node) (*url.URL, error) {
	var host string
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && host == "" {
				host = a.Address
			}
		}
	}
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	if host == "" || port == 0 {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("node %s has no kubelet address", node.Name))
	}
	return &url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(int(port)))}, nil
}

// proxyLog serves pods/log from the agent of the pod's node.
func (s *Server) proxyLog(w http.ResponseWriter, r *http.Request, req *request) error {
	obj, err := req.h.store.Get(r.Context(), req.h.key(req), req.name)
	if err != nil {
		return err
	}
	pod := obj.(*corev1.Pod)
	q := r.URL.Query()
	container := q.Get("container")
	if container == "" {
		if len(pod.Spec.Containers) != 1 {
			names := ""
			for i, c := range pod.Spec.Containers {
				if i > 0 {
					names += " "
				}
				names += c.Name
			}
			return badRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: [%s]", pod.Name, names))
		}
		container = pod.Spec.Containers[0].Name
	}
	known := false
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		known = known || c.Name == container
	}
	if !known {
		return badRequest(fmt.Sprintf("container %s is not valid for pod %s", container, pod.Name))
	}
	if pod.Spec.NodeName == "" {
		return badRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	u, err := s.kubeletURL(r.Context(), pod.Spec.NodeName)
	if err != nil {
		return err
	}
	u.Path = "/containerLogs/" + pod.Namespace + "/" + pod.Name + "/" + container
	out := url.Values{}
	for _, k := range []string{"follow", "previous", "timestamps", "tailLines", "sinceSeconds", "sinceTime", "limitBytes"} {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	u.RawQuery = out.Encode()
	preq, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	resp, err := s.kubelet.RoundTrip(preq)
	if err != nil {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("get logs from node %s: %v", pod.Spec.NodeName, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return apierrors.NewBadRequest(string(trimNL(msg)))
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err != nil {
			return nil
		}
	}
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
