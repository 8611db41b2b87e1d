// Package registry describes each API resource skiff serves: its kind and
// scope, its defaults and validation, how status splits from the rest, and
// which fields selectors may name. The apiserver's generic handler does the
// rest.
package registry

import (
	"reflect"
	"strconv"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/scheme"
)

// Resource is one served resource.
type Resource struct {
	GVK        schema.GroupVersionKind
	Plural     string
	Singular   string
	ShortNames []string
	Categories []string
	Namespaced bool
	// Subresources served besides the object itself: "status", "scale", "binding", "eviction".
	Subresources []string
	// ResetStatusOnCreate clears status on create (true for most kinds with a status).
	ResetStatusOnCreate bool
	// NameIsDNSLabel: names must be RFC 1123 labels (namespaces, services) rather than subdomains.
	NameIsDNSLabel bool

	// Default fills in defaults, as upstream's defaulters do, on create and update.
	Default func(obj runtime.Object)
	// PrepareForCreate sets server-owned fields on create (after Default), e.g. a Job's selector.
	PrepareForCreate func(obj runtime.Object)
	// Validate checks an object on create and update (beyond metadata, which the handler checks).
	Validate func(obj runtime.Object) field.ErrorList
	// ValidateUpdate checks what may not change (immutable fields); nil = anything may change.
	ValidateUpdate func(obj, old runtime.Object) field.ErrorList
	// Fields returns the selectable fields beyond metadata.name and metadata.namespace.
	Fields func(obj runtime.Object) fields.Set
}

// GroupVersionResource of the resource.
func (r *Resource) GVR() schema.GroupVersionResource {
	return r.GVK.GroupVersion().WithResource(r.Plural)
}

// GroupResource of the resource.
func (r *Resource) GR() schema.GroupResource {
	return schema.GroupResource{Group: r.GVK.Group, Resource: r.Plural}
}

// New returns an empty object of the kind.
func (r *Resource) New() runtime.Object {
	obj, err := scheme.Scheme.New(r.GVK)
	if err != nil {
		panic(err)
	}
	return obj
}

// NewList returns an empty list of the kind.
func (r *Resource) NewList() runtime.Object {
	obj, err := scheme.Scheme.New(r.GVK.GroupVersion().WithKind(r.GVK.Kind + "List"))
	if err != nil {
		panic(err)
	}
	return obj
}

// HasSubresource reports whether sub is served.
func (r *Resource) HasSubresource(sub string) bool {
	for _, s := range r.Subresources {
		if s == sub {
			return true
		}
	}
	return false
}

// HasStatus reports whether the kind has a status subresource.
func (r *Resource) HasStatus() bool { return r.HasSubresource("status") }

// SelectableFields returns the field set a field selector matches against.
func (r *Resource) SelectableFields(obj runtime.Object) fields.Set {
	m, _ := meta.Accessor(obj)
	set := fields.Set{"metadata.name": m.GetName()}
	if r.Namespaced {
		set["metadata.namespace"] = m.GetNamespace()
	}
	if r.Fields != nil {
		for k, v := range r.Fields(obj) {
			set[k] = v
		}
	}
	return set
}

// structField returns the addressable top-level field name of obj, if any.
func structField(obj runtime.Object, name string) (reflect.Value, bool) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	f := v.Elem().FieldByName(name)
	return f, f.IsValid()
}

// CopyStatus sets dst's status to src's: a write to the main resource keeps the stored status.
func CopyStatus(dst, src runtime.Object) {
	d, ok1 := structField(dst, "Status")
	s, ok2 := structField(src, "Status")
	if ok1 && ok2 {
		d.Set(s)
	}
}

// ResetStatus clears the status.
func ResetStatus(obj runtime.Object) {
	if f, ok := structField(obj, "Status"); ok {
		f.Set(reflect.Zero(f.Type()))
	}
}

// SpecChanged reports whether anything but metadata and status differs: the
// condition for bumping metadata.generation.
func SpecChanged(obj, old runtime.Object) bool {
	a, b := reflect.ValueOf(obj).Elem(), reflect.ValueOf(old).Elem()
	t := a.Type()
	for i := 0; i < t.NumField(); i++ {
		switch t.Field(i).Name {
		case "TypeMeta", "ObjectMeta", "Status":
			continue
		}
		if !apiequality.Semantic.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			return true
		}
	}
	return false
}

// All returns every served resource, in discovery order.
func All() []*Resource { return resources }

var resources []*Resource

func register(r *Resource) *Resource {
	if r.Singular == "" {
		r.Singular = lower(r.GVK.Kind)
	}
	resources = append(resources, r)
	return r
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func fieldsItoa(i int64) string { return strconv.FormatInt(i, 10) }
