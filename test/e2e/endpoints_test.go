package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// globalIPv4 is an address of this machine that Endpoints may carry (the
// API refuses loopback ones, which the other tests' agents advertise).
func globalIPv4(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("no global IPv4 address for the node")
	return ""
}

// TestServiceEndpoints: a Deployment's pods pass their readiness probe and
// show up, with the node's address, in the Service's Endpoints, its
// EndpointSlices and kubectl describe.
func TestServiceEndpoints(t *testing.T) {
	ip := globalIPv4(t)
	c, k := agentCluster(t, "--node-ip", ip)
	marker := filepath.Join(t.TempDir(), "ready")
	applyYAML(t, k, c, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox
        command: ["sh", "-c", "touch %[1]s && exec sleep 3600"]
        ports:
        - {name: http, containerPort: 8080}
        readinessProbe:
          exec: {command: ["test", "-f", "%[1]s"]}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
`, marker))

	want := ip + ":8080"
	eventually(t, 60*time.Second, func() string {
		refs := jsonpath(k, c, "endpoints/web", "{.subsets[*].addresses[*].targetRef.name}")
		if n := len(strings.Fields(refs)); n != 2 {
			return fmt.Sprintf("ready addresses of pods %q, want 2", refs)
		}
		return ""
	})
	pods := strings.Fields(k.run(t, c, "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"))
	refs := k.run(t, c, "get", "endpoints", "web", "-o", "jsonpath={.subsets[*].addresses[*].targetRef.name}")
	for _, p := range pods {
		mustContain(t, "endpoints addresses", refs, p)
	}
	out := k.run(t, c, "get", "endpoints", "web")
	t.Logf("kubectl get endpoints web:\n%s", out)
	if n := strings.Count(out, want); n != 2 {
		t.Fatalf("kubectl get endpoints: %d of %s, want 2:\n%s", n, want, out)
	}

	out = k.run(t, c, "get", "endpointslices", "-l", "kubernetes.io/service-name=web")
	t.Logf("kubectl get endpointslices:\n%s", out)
	mustContain(t, "get endpointslices", out, "web-", "IPv4", "8080", ip)
	conds := k.run(t, c, "get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o",
		"jsonpath={range .items[*].endpoints[*]}{.targetRef.name}={.conditions.ready},{.conditions.serving}{\"\\n\"}{end}")
	for _, p := range pods {
		mustContain(t, "endpointslice conditions", conds, p+"=true,true")
	}

	out = k.run(t, c, "describe", "svc", "web")
	t.Logf("kubectl describe svc web:\n%s", out)
	mustContain(t, "describe svc", out, "Endpoints:", want)
}
