package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const manifest = `apiVersion: v1
kind: Namespace
metadata:
  name: NS
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: NS
  labels: {app: web}
data:
  greeting: hello
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: NS
stringData:
  password: hunter2
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: NS
  labels: {app: web}
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
        image: nginx:1.25
        command: ["sleep", "3600"]
        ports:
        - containerPort: 80
---
apiVersion: batch/v1
kind: Job
metadata:
  name: once
  namespace: NS
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: ["true"]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: NS
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: NS
spec:
  rules:
  - host: web.example
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
`

// TestKubectlWorkflow walks through what a user does with kubectl, with each kubectl.
func TestKubectlWorkflow(t *testing.T) {
	c := startServer(t)
	for _, k := range kubectls(t) {
		k := k
		t.Run(k.name, func(t *testing.T) {
			k.cacheDir = t.TempDir()
			ns := "e2e-" + k.name
			doc := strings.ReplaceAll(manifest, "NS", ns)
			file := filepath.Join(t.TempDir(), "app.yaml")
			if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}

			out := k.run(t, c, "apply", "-f", file)
			mustContain(t, "apply", out, "namespace/"+ns+" created", "configmap/settings created", "secret/creds created",
				"deployment.apps/web created", "job.batch/once created", "service/web created", "ingress.networking.k8s.io/web created")

			out = k.run(t, c, "explain", "pod.spec.containers")
			mustContain(t, "explain", out, "List of containers belonging to the pod")

			out = k.run(t, c, "get", "deploy", "-n", ns, "-o", "wide")
			mustContain(t, "get -o wide", out, "READY", "UP-TO-DATE", "CONTAINERS", "IMAGES", "SELECTOR", "nginx:1.25", "app=web")
			out = k.run(t, c, "get", "cm", "settings", "-n", ns, "-o", "yaml")
			mustContain(t, "get -o yaml", out, "greeting: hello", "kind: ConfigMap", "resourceVersion:")
			out = k.run(t, c, "get", "deploy", "web", "-n", ns, "-o", "json")
			if r := jsonField(t, out, "spec", "strategy", "rollingUpdate", "maxSurge"); r != "25%" {
				t.Fatalf("deployment maxSurge default = %v, want 25%%", r)
			}
			out = k.run(t, c, "get", "svc", "web", "-n", ns, "-o", "jsonpath={.spec.clusterIP}")
			if !strings.HasPrefix(out, "10.43.") {
				t.Fatalf("service clusterIP = %q, want one from 10.43.0.0/16", out)
			}
			out = k.run(t, c, "get", "cm", "-l", "app=web", "-A")
			mustContain(t, "get -l -A", out, "NAMESPACE", ns, "settings")
			out = k.run(t, c, "get", "secret", "creds", "-n", ns, "-o", "jsonpath={.data.password}")
			if out != "aHVudGVyMg==" {
				t.Fatalf("secret stringData became data.password = %q", out)
			}
			out = k.run(t, c, "get", "jobs", "-n", ns)
			mustContain(t, "get jobs", out, "STATUS", "COMPLETIONS", "once")
			out = k.run(t, c, "get", "ingress", "-n", ns)
			mustContain(t, "get ingress", out, "HOSTS", "web.example")

			// get -w sees a ConfigMap created after it started.
			watch := k.cmd(c, "get", "cm", "-n", ns, "-w", "--output-watch-events")
			var wout lockedBuffer
			watch.Stdout, watch.Stderr = &wout, &wout
			if err := watch.Start(); err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, func() string {
				if !strings.Contains(wout.String(), "settings") {
					return "watch did not list settings: " + wout.String()
				}
				return ""
			})
			k.run(t, c, "create", "cm", "later", "-n", ns, "--from-literal=k=v")
			eventually(t, 20*time.Second, func() string {
				if !strings.Contains(wout.String(), "ADDED") || !strings.Contains(wout.String(), "later") {
					return "watch did not show ADDED later: " + wout.String()
				}
				return ""
			})
			watch.Process.Kill()
			watch.Wait()

			k.run(t, c, "patch", "deploy", "web", "-n", ns, "-p", `{"spec":{"replicas":3}}`)
			k.run(t, c, "patch", "cm", "settings", "-n", ns, "--type=json", "-p", `[{"op":"add","path":"/data/extra","value":"x"}]`)
			k.run(t, c, "patch", "cm", "settings", "-n", ns, "--type=merge", "-p", `{"data":{"merged":"y"}}`)
			k.run(t, c, "label", "deploy", "web", "-n", ns, "tier=front")
			k.run(t, c, "annotate", "deploy", "web", "-n", ns, "note=first")
			out = k.run(t, c, "get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas} {.metadata.labels.tier} {.metadata.annotations.note} {.metadata.generation}")
			if out != "3 front first 2" {
				t.Fatalf("after patch/label/annotate: %q, want \"3 front first 2\"", out)
			}
			out = k.run(t, c, "get", "cm", "settings", "-n", ns, "-o", "jsonpath={.data.extra}{.data.merged}")
			if out != "xy" {
				t.Fatalf("json and merge patches: %q", out)
			}

			edit := k.cmd(c, "edit", "deploy", "web", "-n", ns)
			edit.Env = append(edit.Env, "EDITOR=sed -i s/note:\\ first/note:\\ edited/", "KUBE_EDITOR=")
			if o, err := edit.CombinedOutput(); err != nil {
				t.Fatalf("kubectl edit: %v\n%s", err, o)
			}
			out = k.run(t, c, "get", "deploy", "web", "-n", ns, "-o", "jsonpath={.metadata.annotations.note}")
			if out != "edited" {
				t.Fatalf("after edit: note=%q", out)
			}

			cur := k.run(t, c, "get", "cm", "settings", "-n", ns, "-o", "yaml")
			k.runIn(t, c, strings.Replace(cur, "greeting: hello", "greeting: replaced", 1), "replace", "-f", "-")
			out = k.run(t, c, "get", "cm", "settings", "-n", ns, "-o", "jsonpath={.data.greeting}")
			if out != "replaced" {
				t.Fatalf("after replace: %q", out)
			}

			changed := strings.Replace(doc, "replicas: 2", "replicas: 4", 1)
			out = k.runIn(t, c, changed, "apply", "-f", "-")
			mustContain(t, "apply again", out, "deployment.apps/web configured")
			out = k.run(t, c, "get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}")
			if out != "4" {
				t.Fatalf("after second apply: replicas %q", out)
			}
			out = k.runIn(t, c, strings.Replace(changed, "replicas: 4", "replicas: 5", 1), "apply", "--server-side", "--force-conflicts", "-f", "-")
			mustContain(t, "apply --server-side", out, "deployment.apps/web serverside-applied")
			out = k.run(t, c, "get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}")
			if out != "5" {
				t.Fatalf("after server-side apply: replicas %q", out)
			}

			// Invalid manifests fail with upstream's message shapes.
			bad := strings.Replace(strings.Split(doc, "---\n")[3], "name: web\n  namespace", "name: bad\n  namespace", 1)
			bad = strings.Replace(bad, "    metadata:\n      labels: {app: web}", "    metadata:\n      labels: {app: other}", 1)
			cmd := k.cmd(c, "apply", "-f", "-")
			cmd.Stdin = strings.NewReader(bad)
			o, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("invalid deployment applied:\n%s", o)
			}
			mustContain(t, "invalid deployment", string(o), `The Deployment "bad" is invalid`, "spec.template.metadata.labels", "`selector` does not match template `labels`")
			cmd = k.cmd(c, "apply", "-f", "-")
			cmd.Stdin = strings.NewReader(strings.Replace(strings.Split(doc, "---\n")[1], "\ndata:", "\nbogus: 1\ndata:", 1))
			o, err = cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("manifest with an unknown field applied:\n%s", o)
			}
			mustContain(t, "unknown field", string(o), `unknown field "bogus"`)

			out = k.run(t, c, "delete", "cm", "later", "-n", ns, "--wait")
			mustContain(t, "delete --wait", out, `configmap "later" deleted`)
			k.run(t, c, "delete", "deploy", "web", "-n", ns, "--cascade=background")
			k.run(t, c, "delete", "job", "once", "-n", ns, "--cascade=orphan")
			out = k.run(t, c, "get", "deploy,job", "-n", ns)
			mustContain(t, "after deletes", out, "No resources found")
			if _, err := k.try(c, "get", "cm", "later", "-n", ns); err == nil {
				t.Fatal("deleted configmap still there")
			}

			// Deleting the namespace deletes what is in it, then the namespace.
			out = k.run(t, c, "delete", "ns", ns, "--wait", "--timeout=60s")
			mustContain(t, "delete namespace", out, `namespace "`+ns+`" deleted`)
			if o, err := k.try(c, "get", "ns", ns); err == nil || !strings.Contains(o, "NotFound") && !strings.Contains(o, "not found") {
				t.Fatalf("namespace still there after delete --wait: %s", o)
			}
			if o, err := k.try(c, "create", "cm", "x", "-n", ns); err == nil {
				t.Fatalf("created a configmap in a deleted namespace: %s", o)
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer process and a polling reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
