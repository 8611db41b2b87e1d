package openapi

import (
	"bytes"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/kube-openapi/pkg/spec3"
)

func gvk(group, version, kind string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: group, Version: version, Kind: kind}
}

// testResources is a representative slice of the built-in API.
var testResources = []Resource{
	{GVK: gvk("", "v1", "Pod"), Plural: "pods", Namespaced: true, Subresources: []string{"status", "binding", "eviction", "ephemeralcontainers", "log", "exec"}},
	{GVK: gvk("", "v1", "ConfigMap"), Plural: "configmaps", Namespaced: true},
	{GVK: gvk("", "v1", "Service"), Plural: "services", Namespaced: true, Subresources: []string{"status"}},
	{GVK: gvk("", "v1", "Node"), Plural: "nodes", Subresources: []string{"status"}},
	{GVK: gvk("", "v1", "Namespace"), Plural: "namespaces", Subresources: []string{"status", "finalize"}},
	{GVK: gvk("", "v1", "Binding"), Plural: "bindings", Namespaced: true},
	{GVK: gvk("", "v1", "ServiceAccount"), Plural: "serviceaccounts", Namespaced: true, Subresources: []string{"token"}},
	{GVK: gvk("apps", "v1", "Deployment"), Plural: "deployments", Namespaced: true, Subresources: []string{"status", "scale"}},
	{GVK: gvk("apps", "v1", "StatefulSet"), Plural: "statefulsets", Namespaced: true, Subresources: []string{"status", "scale"}},
	{GVK: gvk("rbac.authorization.k8s.io", "v1", "ClusterRole"), Plural: "clusterroles"},
	{GVK: gvk("authentication.k8s.io", "v1", "TokenReview"), Plural: "tokenreviews"},
	{GVK: gvk("events.k8s.io", "v1", "Event"), Plural: "events", Namespaced: true},
}

var (
	buildOnce sync.Once
	built     *Documents
	buildErr  error
)

func testDocs(t *testing.T) *Documents {
	t.Helper()
	buildOnce.Do(func() { built, buildErr = Build(scheme.Scheme, testResources) })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// at follows a path of object keys and array indexes ("0") through decoded JSON.
func at(v any, path ...string) (any, error) {
	for i, p := range path {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[p]; !ok {
				return nil, fmt.Errorf("no key %q at %s", p, strings.Join(path[:i], "/"))
			}
		case []any:
			var n int
			if _, err := fmt.Sscan(p, &n); err != nil || n >= len(c) {
				return nil, fmt.Errorf("no index %q at %s", p, strings.Join(path[:i], "/"))
			}
			v = c[n]
		default:
			return nil, fmt.Errorf("%s is a %T, not a container", strings.Join(path[:i], "/"), v)
		}
	}
	return v, nil
}

// findParam returns the named parameter of an operation, or nil.
func findParam(op any, name string) map[string]any {
	params, _ := at(op, "parameters")
	list, _ := params.([]any)
	for _, p := range list {
		if m := p.(map[string]any); m["name"] == name {
			return m
		}
	}
	return nil
}

func TestDocuments(t *testing.T) {
	docs := testDocs(t)
	const (
		core = "api/v1"
		apps = "apis/apps/v1"
		rbac = "apis/rbac.authorization.k8s.io/v1"
		auth = "apis/authentication.k8s.io/v1"
		evts = "apis/events.k8s.io/v1"
		S    = "components/schemas/"
		P    = "paths/"
	)
	gvkList := func(g, v, k string) any {
		return []any{map[string]any{"group": g, "version": v, "kind": k}}
	}
	tests := []struct {
		doc  string
		path string // slash-separated; schema names and URL paths use "|" in place of "/"
		want any    // nil: must exist; string "~x": must contain x
	}{
		{core, "openapi", "3.0.0"},
		{core, "info/title", "Kubernetes"},
		{core, "info/version", "v1.37.2"},
		// descriptions (kubectl explain)
		{core, S + "io.k8s.api.core.v1.Pod/description", "~collection of containers"},
		{core, S + "io.k8s.api.core.v1.PodSpec/properties/containers/description", "~List of containers belonging to the pod"},
		{core, S + "io.k8s.api.core.v1.Pod/properties/spec/allOf/0/$ref", "#|components|schemas|io.k8s.api.core.v1.PodSpec"},
		{core, S + "io.k8s.api.core.v1.Pod/properties/spec/description", "~Specification of the desired behavior"},
		{core, S + "io.k8s.api.core.v1.Pod/properties/apiVersion/description", "~APIVersion defines"},
		{core, S + "io.k8s.api.core.v1.Pod/properties/metadata/allOf/0/$ref", "#|components|schemas|io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
		// strategic merge metadata
		{core, S + "io.k8s.api.core.v1.PodSpec/properties/containers/x-kubernetes-patch-merge-key", "name"},
		{core, S + "io.k8s.api.core.v1.PodSpec/properties/containers/x-kubernetes-patch-strategy", "merge"},
		{core, S + "io.k8s.api.core.v1.PodSpec/properties/containers/items/allOf/0/$ref", "#|components|schemas|io.k8s.api.core.v1.Container"},
		{core, S + "io.k8s.api.core.v1.PodSpec/properties/volumes/x-kubernetes-patch-strategy", "merge,retainKeys"},
		// list/map types (from client-go's apply schema)
		{core, S + "io.k8s.api.core.v1.PodSpec/properties/containers/x-kubernetes-list-type", "map"},
		{core, S + "io.k8s.api.core.v1.Container/properties/ports/x-kubernetes-list-map-keys", []any{"containerPort", "protocol"}},
		{core, S + "io.k8s.api.core.v1.PodSpec/properties/tolerations/x-kubernetes-list-type", "atomic"},
		{core, S + "io.k8s.api.core.v1.PodSpec/properties/nodeSelector/x-kubernetes-map-type", "atomic"},
		{apps, S + "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector/x-kubernetes-map-type", "atomic"},
		// types
		{core, S + "io.k8s.api.core.v1.Container/required", []any{"name"}},
		{core, S + "io.k8s.api.core.v1.PodSpec/required", []any{"containers"}},
		{core, S + "io.k8s.apimachinery.pkg.api.resource.Quantity/type", "string"},
		{core, S + "io.k8s.apimachinery.pkg.util.intstr.IntOrString/type", "string"},
		{core, S + "io.k8s.apimachinery.pkg.util.intstr.IntOrString/format", "int-or-string"},
		{core, S + "io.k8s.apimachinery.pkg.apis.meta.v1.Time/format", "date-time"},
		{core, S + "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1/type", "object"},
		{core, S + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta/properties/labels/additionalProperties/type", "string"},
		{core, S + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta/properties/creationTimestamp/allOf/0/$ref", "#|components|schemas|io.k8s.apimachinery.pkg.apis.meta.v1.Time"},
		{core, S + "io.k8s.api.core.v1.ConfigMap/properties/binaryData/additionalProperties/format", "byte"},
		{core, S + "io.k8s.api.core.v1.ResourceRequirements/properties/limits/additionalProperties/$ref", "#|components|schemas|io.k8s.apimachinery.pkg.api.resource.Quantity"},
		{core, S + "io.k8s.api.core.v1.ContainerPort/properties/containerPort/format", "int32"},
		{core, S + "io.k8s.api.core.v1.PodSpec/properties/activeDeadlineSeconds/format", "int64"},
		{core, S + "io.k8s.api.core.v1.ServicePort/properties/targetPort/allOf/0/$ref", "#|components|schemas|io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
		{evts, S + "io.k8s.api.events.v1.Event/properties/eventTime/allOf/0/$ref", "#|components|schemas|io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"},
		// kinds
		{core, S + "io.k8s.api.core.v1.Pod/x-kubernetes-group-version-kind", gvkList("", "v1", "Pod")},
		{core, S + "io.k8s.api.core.v1.PodList/x-kubernetes-group-version-kind", gvkList("", "v1", "PodList")},
		{core, S + "io.k8s.api.policy.v1.Eviction/x-kubernetes-group-version-kind", gvkList("policy", "v1", "Eviction")},
		{apps, S + "io.k8s.api.apps.v1.Deployment/x-kubernetes-group-version-kind", gvkList("apps", "v1", "Deployment")},
		{apps, S + "io.k8s.api.autoscaling.v1.Scale/x-kubernetes-group-version-kind", gvkList("autoscaling", "v1", "Scale")},
		// paths and operations
		{core, P + "|api|v1|namespaces|{namespace}|pods/get/operationId", "listCoreV1NamespacedPod"},
		{core, P + "|api|v1|namespaces|{namespace}|pods/get/x-kubernetes-action", "list"},
		{core, P + "|api|v1|namespaces|{namespace}|pods/get/responses/200/content/application|json/schema/$ref", "#|components|schemas|io.k8s.api.core.v1.PodList"},
		{core, P + "|api|v1|namespaces|{namespace}|pods/post/operationId", "createCoreV1NamespacedPod"},
		{core, P + "|api|v1|namespaces|{namespace}|pods/post/requestBody/content/application|json/schema/$ref", "#|components|schemas|io.k8s.api.core.v1.Pod"},
		{core, P + "|api|v1|namespaces|{namespace}|pods/post/responses/201/content/application|json/schema/$ref", "#|components|schemas|io.k8s.api.core.v1.Pod"},
		{core, P + "|api|v1|namespaces|{namespace}|pods/delete/operationId", "deleteCoreV1CollectionNamespacedPod"},
		{core, P + "|api|v1|namespaces|{namespace}|pods/delete/x-kubernetes-action", "deletecollection"},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}/get/operationId", "readCoreV1NamespacedPod"},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}/put/operationId", "replaceCoreV1NamespacedPod"},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}/patch/operationId", "patchCoreV1NamespacedPod"},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}/patch/tags", []any{"core_v1"}},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}/patch/x-kubernetes-group-version-kind", map[string]any{"group": "", "version": "v1", "kind": "Pod"}},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}/patch/requestBody/content/application|strategic-merge-patch+json/schema/$ref", "#|components|schemas|io.k8s.apimachinery.pkg.apis.meta.v1.Patch"},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}/patch/requestBody/content/application|apply-patch+yaml", nil},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}/patch/requestBody/content/application|json-patch+json", nil},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}/patch/requestBody/content/application|merge-patch+json", nil},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}/delete/operationId", "deleteCoreV1NamespacedPod"},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}/delete/requestBody/content/application|json/schema/$ref", "#|components|schemas|io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}/parameters/0/name", "name"},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}/parameters/1/name", "namespace"},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}/parameters/2/name", "pretty"},
		{core, P + "|api|v1|pods/get/operationId", "listCoreV1PodForAllNamespaces"},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}|status/patch/operationId", "patchCoreV1NamespacedPodStatus"},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}|status/get/x-kubernetes-group-version-kind/kind", "Pod"},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}|ephemeralcontainers/patch/operationId", "patchCoreV1NamespacedPodEphemeralcontainers"},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}|eviction/post/operationId", "createCoreV1NamespacedPodEviction"},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}|eviction/post/x-kubernetes-group-version-kind/group", "policy"},
		{core, P + "|api|v1|namespaces|{namespace}|pods|{name}|binding/post/requestBody/content/application|json/schema/$ref", "#|components|schemas|io.k8s.api.core.v1.Binding"},
		{core, P + "|api|v1|namespaces|{namespace}|bindings/post/operationId", "createCoreV1NamespacedBinding"},
		{core, P + "|api|v1|namespaces|{namespace}|serviceaccounts|{name}|token/post/operationId", "createCoreV1NamespacedServiceAccountToken"},
		{core, P + "|api|v1|nodes/get/operationId", "listCoreV1Node"},
		{core, P + "|api|v1|nodes|{name}/patch/operationId", "patchCoreV1Node"},
		{core, P + "|api|v1|nodes|{name}/parameters/0/name", "name"},
		{core, P + "|api|v1|nodes|{name}/parameters/1/name", "pretty"},
		{core, P + "|api|v1|namespaces|{name}|finalize/put/operationId", "replaceCoreV1NamespaceFinalize"},
		{apps, P + "|apis|apps|v1|namespaces|{namespace}|deployments|{name}/patch/operationId", "patchAppsV1NamespacedDeployment"},
		{apps, P + "|apis|apps|v1|namespaces|{namespace}|deployments|{name}|scale/get/operationId", "readAppsV1NamespacedDeploymentScale"},
		{apps, P + "|apis|apps|v1|namespaces|{namespace}|deployments|{name}|scale/put/requestBody/content/application|json/schema/$ref", "#|components|schemas|io.k8s.api.autoscaling.v1.Scale"},
		{apps, P + "|apis|apps|v1|namespaces|{namespace}|deployments/delete/operationId", "deleteAppsV1CollectionNamespacedDeployment"},
		{apps, P + "|apis|apps|v1|deployments/get/operationId", "listAppsV1DeploymentForAllNamespaces"},
		{rbac, P + "|apis|rbac.authorization.k8s.io|v1|clusterroles/get/operationId", "listRbacAuthorizationV1ClusterRole"},
		{rbac, P + "|apis|rbac.authorization.k8s.io|v1|clusterroles|{name}/patch/tags", []any{"rbacAuthorization_v1"}},
		{auth, P + "|apis|authentication.k8s.io|v1|tokenreviews/post/operationId", "createAuthenticationV1TokenReview"},
	}
	decoded := map[string]map[string]any{}
	for _, tc := range tests {
		t.Run(tc.doc+"/"+tc.path, func(t *testing.T) {
			doc := decoded[tc.doc]
			if doc == nil {
				doc = decode(t, docs.Docs[tc.doc])
				decoded[tc.doc] = doc
			}
			parts := strings.Split(tc.path, "/")
			for i := range parts {
				parts[i] = strings.ReplaceAll(parts[i], "|", "/")
			}
			got, err := at(doc, parts...)
			if err != nil {
				t.Fatal(err)
			}
			if w, ok := tc.want.(string); ok {
				tc.want = strings.ReplaceAll(w, "|", "/")
				if sub, ok := strings.CutPrefix(w, "~"); ok {
					if s, _ := got.(string); !strings.Contains(s, sub) {
						t.Fatalf("got %q, want it to contain %q", got, sub)
					}
					return
				}
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// kubectl decides on server-side validation from the parameters of the
// PATCH operation; POST and PUT take it too.
func TestFieldValidationParameter(t *testing.T) {
	docs := testDocs(t)
	for key, body := range docs.Docs {
		doc := decode(t, body)
		for path, item := range doc["paths"].(map[string]any) {
			for _, method := range []string{"post", "put", "patch"} {
				op, ok := item.(map[string]any)[method]
				if !ok {
					continue
				}
				for _, want := range []string{"fieldValidation", "dryRun", "fieldManager"} {
					if p := findParam(op, want); p == nil || p["in"] != "query" {
						t.Errorf("%s: %s %s lacks query parameter %s", key, method, path, want)
					}
				}
			}
		}
	}
}

func TestIndex(t *testing.T) {
	docs := testDocs(t)
	var index struct {
		Paths map[string]struct {
			ServerRelativeURL string `json:"serverRelativeURL"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(docs.Index, &index); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range index.Paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"api/v1", "apis/apps/v1", "apis/authentication.k8s.io/v1", "apis/events.k8s.io/v1", "apis/rbac.authorization.k8s.io/v1"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("index paths = %v, want %v", keys, want)
	}
	for _, k := range keys {
		hash := fmt.Sprintf("%X", sha512.Sum512(docs.Docs[k]))
		if docs.Hashes[k] != hash {
			t.Errorf("%s: hash %s, want %s", k, docs.Hashes[k], hash)
		}
		if got, want := index.Paths[k].ServerRelativeURL, "/openapi/v3/"+k+"?hash="+hash; got != want {
			t.Errorf("%s: serverRelativeURL %s, want %s", k, got, want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	a := testDocs(t)
	// Reverse the input order too: the output must not depend on it.
	rev := append([]Resource{}, testResources...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	b, err := Build(scheme.Scheme, rev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Index, b.Index) {
		t.Fatal("index differs between builds")
	}
	for k := range a.Docs {
		if !bytes.Equal(a.Docs[k], b.Docs[k]) {
			t.Errorf("%s differs between builds", k)
		}
	}
}

func TestUnknownKind(t *testing.T) {
	_, err := Build(scheme.Scheme, []Resource{{GVK: gvk("example.com", "v1", "Widget"), Plural: "widgets"}})
	if err == nil {
		t.Fatal("want an error for a kind the scheme does not know")
	}
}

// allSchemeResources makes a resource of every kind in the scheme that has a
// List kind (plural names are approximate; they do not matter here).
func allSchemeResources() []Resource {
	var rs []Resource
	for gvk := range scheme.Scheme.AllKnownTypes() {
		if gvk.Version == "__internal" || strings.HasSuffix(gvk.Kind, "List") {
			continue
		}
		if !scheme.Scheme.Recognizes(gvk.GroupVersion().WithKind(gvk.Kind + "List")) {
			continue
		}
		rs = append(rs, Resource{GVK: gvk, Plural: strings.ToLower(gvk.Kind) + "s", Namespaced: true, Subresources: []string{"status"}})
	}
	return rs
}

// Every document of the whole built-in API decodes as an OpenAPI v3 document
// (kube-openapi's spec3, which client-go uses), and every $ref resolves
// inside the document that holds it.
func TestWholeSchemeDecodesAndResolves(t *testing.T) {
	rs := allSchemeResources()
	if len(rs) < 50 {
		t.Fatalf("only %d resources found in the scheme", len(rs))
	}
	docs, err := Build(scheme.Scheme, rs)
	if err != nil {
		t.Fatal(err)
	}
	for key, body := range docs.Docs {
		var d spec3.OpenAPI
		if err := json.Unmarshal(body, &d); err != nil {
			t.Fatalf("%s: spec3 decode: %v", key, err)
		}
		if d.Paths == nil || len(d.Paths.Paths) == 0 || d.Components == nil || len(d.Components.Schemas) == 0 {
			t.Fatalf("%s: decoded document has no paths or schemas", key)
		}
		schemas := decode(t, body)["components"].(map[string]any)["schemas"].(map[string]any)
		var walk func(v any)
		walk = func(v any) {
			switch c := v.(type) {
			case map[string]any:
				if r, ok := c["$ref"].(string); ok {
					if _, ok := schemas[strings.TrimPrefix(r, refPrefix)]; !ok {
						t.Errorf("%s: unresolved $ref %s", key, r)
					}
				}
				for _, e := range c {
					walk(e)
				}
			case []any:
				for _, e := range c {
					walk(e)
				}
			}
		}
		walk(decode(t, body))
	}
}
