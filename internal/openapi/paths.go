package openapi

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// verb is one kind of operation. Operation IDs are built as upstream does:
// id + GroupVersion + [infix] + [Namespaced] + Kind + [Subresource] + [suffix],
// e.g. deleteCoreV1CollectionNamespacedPod, readAppsV1NamespacedDeploymentScale.
type verb struct {
	id, infix string
	method    string // key in the path item
	action    string // x-kubernetes-action
	desc      string // description of the operation on a resource, %s is the kind
	word      string // the same on a subresource: "<word> <sub> of the specified <Kind>"
	params    []string
	codes     []string // success response codes
}

var (
	listParams   = []string{"allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch"}
	writeParams  = []string{"dryRun", "fieldManager", "fieldValidation"}
	deleteParams = []string{"dryRun", "gracePeriodSeconds", "ignoreStoreReadErrorWithClusterBreakingPotential", "orphanDependents", "propagationPolicy"}

	verbList    = verb{id: "list", method: "get", action: "list", desc: "list or watch objects of kind %s", params: listParams, codes: []string{"200"}}
	verbRead    = verb{id: "read", method: "get", action: "get", desc: "read the specified %s", word: "read", codes: []string{"200"}}
	verbCreate  = verb{id: "create", method: "post", action: "post", desc: "create a %s", word: "create", params: writeParams, codes: []string{"200", "201", "202"}}
	verbReplace = verb{id: "replace", method: "put", action: "put", desc: "replace the specified %s", word: "replace", params: writeParams, codes: []string{"200", "201"}}
	// kubectl apply leaves validation to the server only if the PATCH
	// operation of the kind lists fieldValidation.
	verbPatch            = verb{id: "patch", method: "patch", action: "patch", desc: "partially update the specified %s", word: "partially update", params: append([]string{"force"}, writeParams...), codes: []string{"200", "201"}}
	verbDelete           = verb{id: "delete", method: "delete", action: "delete", desc: "delete a %s", params: deleteParams, codes: []string{"200", "202"}}
	verbDeleteCollection = verb{id: "delete", infix: "Collection", method: "delete", action: "deletecollection", desc: "delete collection of %s", params: append(append([]string{}, listParams...), deleteParams...), codes: []string{"200"}}
)

// queryParams describes every query parameter used above: type and description.
var queryParams = map[string][2]string{
	"allowWatchBookmarks":  {"boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion."},
	"continue":             {"string", "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue)."},
	"dryRun":               {"string", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed"},
	"fieldManager":         {"string", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint."},
	"fieldSelector":        {"string", "A selector to restrict the list of returned objects by their fields. Defaults to everything."},
	"fieldValidation":      {"string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered."},
	"force":                {"boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."},
	"gracePeriodSeconds":   {"integer", "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used."},
	"labelSelector":        {"string", "A selector to restrict the list of returned objects by their labels. Defaults to everything."},
	"limit":                {"integer", "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results."},
	"orphanDependents":     {"boolean", "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list."},
	"pretty":               {"string", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."},
	"propagationPolicy":    {"string", "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground."},
	"resourceVersion":      {"string", "resourceVersion sets a constraint on what resource versions a request may be served from. Defaults to unset"},
	"resourceVersionMatch": {"string", "resourceVersionMatch determines how resourceVersion is applied to list calls. Defaults to unset"},
	"sendInitialEvents":    {"boolean", "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection."},
	"timeoutSeconds":       {"integer", "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity."},
	"watch":                {"boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion."},
	"ignoreStoreReadErrorWithClusterBreakingPotential": {"boolean", "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error."},
}

// subresource says which kind a subresource takes and returns, and which verbs it has.
type subresource struct {
	gvk   schema.GroupVersionKind // zero: the parent kind (status, ephemeralcontainers, ...)
	verbs []verb
}

var subresources = map[string]subresource{
	"scale":    {schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}, []verb{verbRead, verbReplace, verbPatch}},
	"eviction": {schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "Eviction"}, []verb{verbCreate}},
	"binding":  {schema.GroupVersionKind{Version: "v1", Kind: "Binding"}, []verb{verbCreate}},
	"token":    {schema.GroupVersionKind{Group: "authentication.k8s.io", Version: "v1", Kind: "TokenRequest"}, []verb{verbCreate}},
	"finalize": {verbs: []verb{verbReplace}},
	// Streaming subresources have no JSON kind to describe; they are left out.
	"log": {}, "exec": {}, "attach": {}, "portforward": {}, "proxy": {},
}

// opNames turns a group-version into its operation-ID and tag forms:
// rbac.authorization.k8s.io/v1 -> "RbacAuthorizationV1", "rbacAuthorization_v1"; "" -> "CoreV1", "core_v1".
func opNames(gv schema.GroupVersion) (id, tag string) {
	group := "core"
	if gv.Group != "" {
		parts := strings.Split(strings.TrimSuffix(gv.Group, ".k8s.io"), ".")
		for i := 1; i < len(parts); i++ {
			parts[i] = upperFirst(parts[i])
		}
		group = strings.Join(parts, "")
	}
	return upperFirst(group) + upperFirst(gv.Version), group + "_" + gv.Version
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// addResource adds the paths of one resource and its subresources.
func (d *docBuilder) addResource(r Resource) error {
	gv := r.GVK.GroupVersion()
	kind := d.kindRef(r.GVK)
	if kind == "" {
		return fmt.Errorf("openapi: kind %v is not registered in the scheme", r.GVK)
	}
	// A kind without a List type is a create-only virtual resource
	// (tokenreviews, subjectaccessreviews, bindings): upstream only has POST.
	list := d.kindRef(gv.WithKind(r.GVK.Kind + "List"))
	status := d.typeRef(metav1.Status{})
	gvID, tag := opNames(gv)
	scope, collection := "", "/"+gvPath(gv)+"/"+r.Plural
	if r.Namespaced {
		scope, collection = "Namespaced", "/"+gvPath(gv)+"/namespaces/{namespace}/"+r.Plural
	}
	item := collection + "/{name}"
	o := opBuilder{d: d, tag: tag, gvk: r.GVK}
	id := func(v verb, suffix string) string { return v.id + gvID + v.infix + scope + r.GVK.Kind + suffix }
	desc := func(v verb) string { return fmt.Sprintf(v.desc, r.GVK.Kind) }

	if list == "" {
		d.addPath(collection, r.Namespaced, "", o.op(verbCreate, id(verbCreate, ""), desc(verbCreate), kind))
		return nil
	}
	d.addPath(collection, r.Namespaced, "",
		o.op(verbList, id(verbList, ""), desc(verbList), list),
		o.op(verbCreate, id(verbCreate, ""), desc(verbCreate), kind),
		o.op(verbDeleteCollection, id(verbDeleteCollection, ""), desc(verbDeleteCollection), status))
	d.addPath(item, r.Namespaced, r.GVK.Kind,
		o.op(verbRead, id(verbRead, ""), desc(verbRead), kind),
		o.op(verbReplace, id(verbReplace, ""), desc(verbReplace), kind),
		o.op(verbPatch, id(verbPatch, ""), desc(verbPatch), kind),
		o.op(verbDelete, id(verbDelete, ""), desc(verbDelete), status))
	if r.Namespaced {
		all := "list" + gvID + r.GVK.Kind + "ForAllNamespaces"
		d.addPath("/"+gvPath(gv)+"/"+r.Plural, false, "", o.op(verbList, all, desc(verbList), list))
	}

	for _, sub := range r.Subresources {
		spec, known := subresources[sub]
		if !known { // status, ephemeralcontainers, resize, approval, ...
			spec = subresource{verbs: []verb{verbRead, verbReplace, verbPatch}}
		}
		so, subKind := o, kind
		if !spec.gvk.Empty() {
			if subKind = d.kindRef(spec.gvk); subKind == "" {
				return fmt.Errorf("openapi: kind %v of %s/%s is not registered in the scheme", spec.gvk, r.Plural, sub)
			}
			so.gvk = spec.gvk
		}
		var ops []operation
		for _, v := range spec.verbs {
			ops = append(ops, so.op(v, id(v, upperFirst(sub)), fmt.Sprintf("%s %s of the specified %s", v.word, sub, r.GVK.Kind), subKind))
		}
		if len(ops) > 0 {
			d.addPath(item+"/"+sub, r.Namespaced, so.gvk.Kind, ops...)
		}
	}
	return nil
}

// addPath adds operations to a path item with its path-level parameters:
// {namespace} if namespaced, {name} if nameOf is set, and pretty.
func (d *docBuilder) addPath(path string, namespaced bool, nameOf string, ops ...operation) {
	pi, _ := d.paths[path].(object)
	if pi == nil {
		params := []any{}
		if nameOf != "" {
			params = append(params, object{"name": "name", "in": "path", "required": true,
				"description": "name of the " + nameOf, "schema": object{"type": "string"}})
		}
		if namespaced {
			params = append(params, object{"name": "namespace", "in": "path", "required": true,
				"description": "object name and auth scope, such as for teams and projects", "schema": object{"type": "string"}})
		}
		params = append(params, queryParam("pretty"))
		pi = object{"parameters": params}
		d.paths[path] = pi
	}
	for _, op := range ops {
		pi[op.method] = op.spec
	}
}

// operation is one operation and the HTTP method (path item key) it is under.
type operation struct {
	method string
	spec   object
}

// opBuilder creates the operations of one kind.
type opBuilder struct {
	d   *docBuilder
	tag string
	gvk schema.GroupVersionKind
}

// op builds one operation; resp is the component returned on success (and,
// for create and replace, also the request body).
func (o opBuilder) op(v verb, id, desc, resp string) operation {
	op := object{
		"tags":                            []any{o.tag},
		"description":                     desc,
		"operationId":                     id,
		"responses":                       object{"401": object{"description": "Unauthorized"}},
		"x-kubernetes-action":             v.action,
		"x-kubernetes-group-version-kind": gvkExt(o.gvk),
	}
	if len(v.params) > 0 {
		names := append([]string{}, v.params...)
		sort.Strings(names)
		params := make([]any, len(names))
		for i, n := range names {
			params[i] = queryParam(n)
		}
		op["parameters"] = params
	}
	switch v.method {
	case "post", "put":
		op["requestBody"] = object{"required": true, "content": content(resp, "application/json", "application/yaml")}
	case "patch":
		op["requestBody"] = object{"required": true, "content": content(o.d.typeRef(metav1.Patch{}),
			"application/json-patch+json", "application/merge-patch+json",
			"application/strategic-merge-patch+json", "application/apply-patch+yaml")}
	case "delete":
		op["requestBody"] = object{"content": content(o.d.typeRef(metav1.DeleteOptions{}), "application/json")}
	}
	responses := op["responses"].(object)
	for _, code := range v.codes {
		responses[code] = object{"description": responseText[code], "content": content(resp, "application/json", "application/yaml")}
	}
	return operation{v.method, op}
}

var responseText = map[string]string{"200": "OK", "201": "Created", "202": "Accepted"}

func content(schemaName string, mediaTypes ...string) object {
	c := object{}
	for _, mt := range mediaTypes {
		c[mt] = object{"schema": object{"$ref": refPrefix + schemaName}}
	}
	return c
}

func queryParam(name string) object {
	p := queryParams[name]
	return object{"name": name, "in": "query", "description": p[1], "schema": object{"type": p[0]}}
}
