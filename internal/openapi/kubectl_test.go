package openapi

// These tests feed the documents to kubectl's own code: the explain renderer,
// the server-side-validation probe and the strategic-merge-patch computation
// of `kubectl apply`, all through client-go's OpenAPI v3 client talking to a
// test HTTP server (so the index format and hashed URLs are exercised too).
// TestRealKubectl runs the kubectl binary itself when one is on PATH.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi"
	"k8s.io/client-go/openapi3"
	"k8s.io/client-go/rest"
	explainv2 "k8s.io/kubectl/pkg/explain/v2"
)

// apiServer serves /openapi/v3 and legacy discovery for testResources;
// objects handles every other request (nil: 404).
func apiServer(t *testing.T, docs *Documents, objects http.HandlerFunc) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		if b, ok := v.([]byte); ok {
			w.Write(b)
			return
		}
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("/openapi/v3", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, docs.Index) })
	mux.HandleFunc("/openapi/v3/", func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/openapi/v3/")
		if docs.Docs[key] == nil || r.URL.Query().Get("hash") != docs.Hashes[key] {
			http.NotFound(w, r)
			return
		}
		writeJSON(w, docs.Docs[key])
	})

	lists := map[string]*metav1.APIResourceList{}
	groups := &metav1.APIGroupList{}
	for _, res := range testResources {
		gv := res.GVK.GroupVersion()
		l := lists[gvPath(gv)]
		if l == nil {
			l = &metav1.APIResourceList{GroupVersion: gv.String()}
			lists[gvPath(gv)] = l
			if gv.Group != "" {
				v := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
				groups.Groups = append(groups.Groups, metav1.APIGroup{Name: gv.Group, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v})
			}
		}
		verbs := metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
		l.APIResources = append(l.APIResources, metav1.APIResource{Name: res.Plural, Namespaced: res.Namespaced, Kind: res.GVK.Kind, Verbs: verbs})
	}
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
	})
	mux.HandleFunc("/apis", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, groups) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if l := lists[strings.Trim(r.URL.Path, "/")]; l != nil && r.Method == http.MethodGet {
			writeJSON(w, l)
			return
		}
		if objects != nil {
			objects(w, r)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		writeJSON(w, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: "Failure", Reason: metav1.StatusReasonNotFound, Code: 404})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// openAPIClient is client-go's OpenAPI v3 client, as kubectl builds it.
func openAPIClient(t *testing.T) openapi.Client {
	srv := apiServer(t, testDocs(t), nil)
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return dc.OpenAPIV3()
}

func TestKubectlExplain(t *testing.T) {
	client := openAPIClient(t)
	tests := []struct {
		gvr     schema.GroupVersionResource
		path    []string
		want    []string
		wantErr string
	}{
		{
			gvr:  schema.GroupVersionResource{Version: "v1", Resource: "pods"},
			path: []string{"spec", "containers"},
			want: []string{"KIND:       Pod", "VERSION:    v1", "FIELD: containers <[]Container>",
				"List of containers belonging to the pod", "A single application container",
				"name\t<string> -required-", "image\t<string>", "ports\t<[]ContainerPort>", "resources\t<ResourceRequirements>"},
		},
		{
			gvr: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
			want: []string{"GROUP:      apps", "KIND:       Deployment", "Deployment enables declarative updates",
				"metadata\t<ObjectMeta>", "spec\t<DeploymentSpec>", "Specification of the desired behavior of the Deployment."},
		},
		{
			gvr:  schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
			path: []string{"spec", "template", "spec", "containers", "livenessProbe", "httpGet", "port"},
			want: []string{"FIELD: port <string>", "Name or number of the port"},
		},
		{
			gvr:  schema.GroupVersionResource{Version: "v1", Resource: "nodes"},
			path: []string{"metadata", "creationTimestamp"},
			want: []string{"FIELD: creationTimestamp <string>", "CreationTimestamp is a timestamp"},
		},
		{
			gvr:     schema.GroupVersionResource{Version: "v1", Resource: "pods"},
			path:    []string{"spec", "nope"},
			wantErr: `field "nope" does not exist`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.gvr.Resource+"."+strings.Join(tc.path, "."), func(t *testing.T) {
			var out bytes.Buffer
			err := explainv2.PrintModelDescription(tc.path, &out, client, tc.gvr, false, 0, "plaintext")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// kubectl's probe for server-side field validation (cli-runtime). Create-only
// kinds (TokenReview, Binding) have no PATCH operation, as upstream.
func TestKubectlFindsServerSideValidation(t *testing.T) {
	verifier := resource.NewQueryParamVerifierV3(nil, openAPIClient(t), resource.QueryParamFieldValidation)
	for _, r := range testResources {
		if r.GVK.Kind == "TokenReview" || r.GVK.Kind == "Binding" {
			continue
		}
		if err := verifier.HasSupport(r.GVK); err != nil {
			t.Errorf("%v: %v", r.GVK, err)
		}
	}
}

// kubectl apply's strategic-merge path (pkg/cmd/apply/patcher.go): the PATCH
// operation of the kind must accept strategic-merge-patch+json, then the
// kind's schema is found by x-kubernetes-group-version-kind and drives
// CreateThreeWayMergePatch. The patches must equal those from the Go structs.
func TestKubectlStrategicMergePatch(t *testing.T) {
	root := openapi3.NewRoot(openAPIClient(t))
	tests := []struct {
		name                        string
		gvk                         schema.GroupVersionKind
		goType                      any
		original, modified, current string
		want                        []string // substrings of the patch
	}{
		{
			name:     "deployment container image and env",
			gvk:      gvk("apps", "v1", "Deployment"),
			goType:   &appsv1.Deployment{},
			original: `{"spec":{"template":{"spec":{"containers":[{"name":"a","image":"a:1"},{"name":"b","image":"b:1","env":[{"name":"X","value":"1"}]}]}}}}`,
			modified: `{"spec":{"template":{"spec":{"containers":[{"name":"a","image":"a:1"},{"name":"b","image":"b:2","env":[{"name":"X","value":"1"},{"name":"Y","value":"2"}]}]}}}}`,
			current:  `{"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"a","image":"a:1","imagePullPolicy":"Always"},{"name":"b","image":"b:1","env":[{"name":"X","value":"1"}]}]}}}}`,
			want:     []string{`"$setElementOrder/containers":[{"name":"a"},{"name":"b"}]`, `"$setElementOrder/env"`, `"image":"b:2"`},
		},
		{
			name:     "pod volume source switch (retainKeys)",
			gvk:      gvk("", "v1", "Pod"),
			goType:   &corev1.Pod{},
			original: `{"spec":{"volumes":[{"name":"v","emptyDir":{}}],"containers":[{"name":"c","ports":[{"containerPort":80}]}]}}`,
			modified: `{"spec":{"volumes":[{"name":"v","configMap":{"name":"cm"}}],"containers":[{"name":"c","ports":[{"containerPort":80},{"containerPort":443}]}]}}`,
			current:  `{"spec":{"volumes":[{"name":"v","emptyDir":{}}],"containers":[{"name":"c","ports":[{"containerPort":80,"protocol":"TCP"}]}]}}`,
			want:     []string{`"$retainKeys":["configMap","name"]`, `"$setElementOrder/ports":[{"containerPort":80},{"containerPort":443}]`},
		},
		{
			name:     "node label removal",
			gvk:      gvk("", "v1", "Node"),
			goType:   &corev1.Node{},
			original: `{"metadata":{"labels":{"a":"1","b":"2"}},"spec":{"taints":[{"key":"k","effect":"NoSchedule"}]}}`,
			modified: `{"metadata":{"labels":{"a":"1"}},"spec":{"taints":[]}}`,
			current:  `{"metadata":{"labels":{"a":"1","b":"2"}},"spec":{"taints":[{"key":"k","effect":"NoSchedule"}]}}`,
			want:     []string{`"b":null`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := root.GVSpec(tc.gvk.GroupVersion())
			if err != nil {
				t.Fatal(err)
			}
			smpOK := false
			for _, item := range spec.Paths.Paths {
				if item.Patch == nil {
					continue
				}
				var ext map[string]string
				if item.Patch.Extensions.GetObject("x-kubernetes-group-version-kind", &ext) == nil &&
					ext["group"] == tc.gvk.Group && ext["version"] == tc.gvk.Version && ext["kind"] == tc.gvk.Kind {
					_, smpOK = item.Patch.RequestBody.Content["application/strategic-merge-patch+json"]
					break
				}
			}
			if !smpOK {
				t.Fatal("no PATCH operation accepting strategic-merge-patch+json for the kind")
			}
			var meta strategicpatch.LookupPatchMeta
			for _, s := range spec.Components.Schemas {
				var gvks []map[string]string
				if s.Extensions.GetObject("x-kubernetes-group-version-kind", &gvks) == nil && len(gvks) == 1 &&
					gvks[0]["group"] == tc.gvk.Group && gvks[0]["version"] == tc.gvk.Version && gvks[0]["kind"] == tc.gvk.Kind {
					meta = strategicpatch.PatchMetaFromOpenAPIV3{Schema: s, SchemaList: spec.Components.Schemas}
				}
			}
			if meta == nil {
				t.Fatal("no schema carries the kind's x-kubernetes-group-version-kind")
			}
			got, err := strategicpatch.CreateThreeWayMergePatch([]byte(tc.original), []byte(tc.modified), []byte(tc.current), meta, false)
			if err != nil {
				t.Fatal(err)
			}
			structMeta, err := strategicpatch.NewPatchMetaFromStruct(tc.goType)
			if err != nil {
				t.Fatal(err)
			}
			want, err := strategicpatch.CreateThreeWayMergePatch([]byte(tc.original), []byte(tc.modified), []byte(tc.current), structMeta, false)
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			json.Unmarshal(got, &g)
			json.Unmarshal(want, &w)
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("patch from schema:\n%s\npatch from Go types:\n%s", got, want)
			}
			for _, s := range tc.want {
				if !strings.Contains(string(got), s) {
					t.Errorf("patch %s lacks %s", got, s)
				}
			}
		})
	}
}

// TestRealKubectl runs the kubectl binary against a fake server backed by
// these documents: explain, then apply (create, then patch).
func TestRealKubectl(t *testing.T) {
	bin, err := exec.LookPath("kubectl")
	if err != nil || testing.Short() {
		t.Skip("no kubectl on PATH (or -short)")
	}
	type request struct{ method, path, query, contentType, body string }
	var (
		mu       sync.Mutex
		requests []request
		stored   []byte // the Deployment "web", once created
	)
	const item = "/apis/apps/v1/namespaces/default/deployments/web"
	srv := apiServer(t, testDocs(t), func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		requests = append(requests, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), string(body)})
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/apis/apps/v1/namespaces/default/deployments":
			stored = body
			w.WriteHeader(http.StatusCreated)
			w.Write(stored)
		case r.Method == http.MethodGet && r.URL.Path == item && stored != nil:
			w.Write(stored)
		case r.Method == http.MethodPatch && r.URL.Path == item && stored != nil:
			patched, err := strategicpatch.StrategicMergePatch(stored, body, &appsv1.Deployment{})
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			stored = patched
			w.Write(stored)
		default:
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(&metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
				Status: "Failure", Reason: metav1.StatusReasonNotFound, Code: 404})
		}
	})

	dir := t.TempDir()
	kubectl := func(stdin string, args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--server", srv.URL, "--cache-dir", filepath.Join(dir, "cache")}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+dir, "KUBECONFIG="+filepath.Join(dir, "none"))
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("kubectl %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}

	out, _ := kubectl("", "explain", "pods.spec.containers")
	for _, w := range []string{"KIND:       Pod", "FIELD: containers <[]Container>", "List of containers belonging to the pod", "image\t<string>"} {
		if !strings.Contains(out, w) {
			t.Errorf("kubectl explain output lacks %q:\n%s", w, out)
		}
	}
	out, _ = kubectl("", "explain", "deployment.spec.strategy")
	if !strings.Contains(out, "GROUP:      apps") || !strings.Contains(out, "The deployment strategy to use") {
		t.Errorf("kubectl explain deployment.spec.strategy:\n%s", out)
	}

	manifest := func(image string) string {
		return `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},` +
			`"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},` +
			`"spec":{"containers":[{"name":"web","image":"` + image + `"},{"name":"side","image":"side:1"}]}}}}`
	}
	kubectl(manifest("nginx:1"), "apply", "-f", "-")
	_, stderr := kubectl(manifest("nginx:2"), "apply", "-f", "-", "-v=5")
	for _, bad := range []string{"OpenAPI V3 path", "error calculating patch"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("kubectl apply logged %q: kubectl did not use the v3 schema:\n%s", bad, stderr)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	var post, patch *request
	for i := range requests {
		switch requests[i].method {
		case http.MethodPost:
			post = &requests[i]
		case http.MethodPatch:
			patch = &requests[i]
		}
	}
	if post == nil || patch == nil {
		t.Fatalf("want a POST and a PATCH, got %+v", requests)
	}
	// fieldValidation=Strict in the query means kubectl left validation to the server.
	if !strings.Contains(post.query, "fieldValidation=Strict") {
		t.Errorf("POST query %q: kubectl did not use server-side validation", post.query)
	}
	if !strings.Contains(patch.query, "fieldValidation=Strict") {
		t.Errorf("PATCH query %q: kubectl did not use server-side validation", patch.query)
	}
	if patch.contentType != "application/strategic-merge-patch+json" || !strings.Contains(patch.body, `"$setElementOrder/containers"`) {
		t.Errorf("PATCH %s: %s", patch.contentType, patch.body)
	}
}
