// Package openapi builds the OpenAPI v3 documents served under /openapi/v3
// from the Go types of k8s.io/api, by reflection.
//
// kubectl relies on them for two things: `kubectl explain` renders the
// component schemas (descriptions, types, required fields), and `kubectl
// apply` looks up the PATCH operation of a kind: if it takes the
// fieldValidation query parameter, validation is left to the server, and the
// x-kubernetes-patch-* extensions of the kind's schema drive the computation
// of strategic-merge patches.
package openapi

import (
	"bytes"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Version is reported as info.version of every document.
const Version = "v1.37.2"

// Resource is one REST resource to publish.
type Resource struct {
	GVK          schema.GroupVersionKind // e.g. apps/v1 Deployment
	Plural       string                  // "deployments"
	Namespaced   bool
	Subresources []string // e.g. "status", "scale", "binding", "eviction"
}

// Documents holds everything served under /openapi/v3.
type Documents struct {
	// Index is the body of GET /openapi/v3.
	Index []byte
	// Docs maps "api/v1", "apis/apps/v1", ... to the body of
	// GET /openapi/v3/<key>.
	Docs map[string][]byte
	// Hashes maps the same keys to the uppercase hex SHA-512 of the document,
	// which the index puts in each serverRelativeURL (clients cache by it).
	Hashes map[string]string
}

// Build returns one document per group-version of resources, and the index.
// Types are taken from scheme (scheme.New(gvk)); output is deterministic.
func Build(scheme *runtime.Scheme, resources []Resource) (*Documents, error) {
	markers := loadApplyMarkers(scheme)
	byGV := map[schema.GroupVersion][]Resource{}
	for _, r := range resources {
		gv := r.GVK.GroupVersion()
		byGV[gv] = append(byGV[gv], r)
	}
	out := &Documents{Docs: map[string][]byte{}, Hashes: map[string]string{}}
	index := object{}
	for gv, rs := range byGV {
		doc, err := buildDoc(scheme, markers, gv, rs)
		if err != nil {
			return nil, err
		}
		body, err := marshal(doc)
		if err != nil {
			return nil, err
		}
		key := gvPath(gv)
		out.Docs[key] = body
		out.Hashes[key] = fmt.Sprintf("%X", sha512.Sum512(body))
		index[key] = object{"serverRelativeURL": "/openapi/v3/" + key + "?hash=" + out.Hashes[key]}
	}
	var err error
	out.Index, err = marshal(object{"paths": index})
	return out, err
}

// marshal encodes without HTML escaping (descriptions contain <, >, &).
// Map keys come out sorted, so equal input gives equal bytes.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// gvPath is the document key: "api/v1" for the core group, else "apis/<group>/<version>".
func gvPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

// docBuilder accumulates one group-version document.
type docBuilder struct {
	scheme  *runtime.Scheme
	schemas *schemaBuilder
	paths   object
	// kinds records which components are the bodies of which kinds; they get
	// x-kubernetes-group-version-kind, which is how kubectl finds a kind's schema.
	kinds map[string]map[schema.GroupVersionKind]bool
}

func buildDoc(scheme *runtime.Scheme, markers applyMarkers, gv schema.GroupVersion, rs []Resource) (object, error) {
	d := &docBuilder{
		scheme:  scheme,
		schemas: newSchemaBuilder(markers),
		paths:   object{},
		kinds:   map[string]map[schema.GroupVersionKind]bool{},
	}
	for _, r := range rs {
		if err := d.addResource(r); err != nil {
			return nil, err
		}
	}
	for name, gvks := range d.kinds {
		list := make([]schema.GroupVersionKind, 0, len(gvks))
		for gvk := range gvks {
			list = append(list, gvk)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].String() < list[j].String() })
		ext := make([]any, len(list))
		for i, gvk := range list {
			ext[i] = gvkExt(gvk)
		}
		d.schemas.schemas[name]["x-kubernetes-group-version-kind"] = ext
	}
	return object{
		"openapi": "3.0.0",
		"info":    object{"title": "Kubernetes", "version": Version},
		"paths":   d.paths,
		"components": object{
			"schemas": d.schemas.schemas,
			"securitySchemes": object{"BearerToken": object{
				"type": "apiKey", "name": "authorization", "in": "header",
				"description": "Bearer Token authentication",
			}},
		},
		"security": []any{object{"BearerToken": []any{}}},
	}, nil
}

func gvkExt(gvk schema.GroupVersionKind) object {
	return object{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind}
}

// kindRef registers the Go type of gvk as a component and returns its name,
// or "" if the scheme does not know the kind.
func (d *docBuilder) kindRef(gvk schema.GroupVersionKind) string {
	obj, err := d.scheme.New(gvk)
	if err != nil {
		return ""
	}
	name := d.schemas.ref(reflect.TypeOf(obj).Elem())
	if d.kinds[name] == nil {
		d.kinds[name] = map[schema.GroupVersionKind]bool{}
	}
	d.kinds[name][gvk] = true
	return name
}

// typeRef registers a Go type that is no kind (DeleteOptions, Status, Patch).
func (d *docBuilder) typeRef(v any) string {
	return d.schemas.ref(reflect.TypeOf(v))
}
