package openapi

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/applyconfigurations"
	smd "sigs.k8s.io/structured-merge-diff/v6/schema"
)

// applyMarkers supplies the +listType/+listMapKey/+mapType/+structType
// markers. Those are Go comments, invisible to reflection, but client-go ships
// them compiled into the structured-merge-diff schema it uses for server-side
// apply (generated from upstream's OpenAPI), under the same type names we use.
// A zero applyMarkers (schema unavailable) simply adds nothing.
type applyMarkers struct {
	types map[string]*smd.TypeDef
}

func loadApplyMarkers(s *runtime.Scheme) applyMarkers {
	// The schema is only reachable through a typed value, so convert any object.
	probe := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}}
	tv, err := applyconfigurations.NewTypeConverter(s).ObjectToTyped(probe)
	if err != nil {
		return applyMarkers{}
	}
	m := applyMarkers{types: map[string]*smd.TypeDef{}}
	for i := range tv.Schema().Types {
		td := &tv.Schema().Types[i]
		m.types[td.Name] = td
	}
	return m
}

// structExt marks structs that apply replaces as a whole (+structType=atomic).
func (m applyMarkers) structExt(typeName string) object {
	if td := m.types[typeName]; td != nil && td.Map != nil && td.Map.ElementRelationship == smd.Atomic {
		return object{"x-kubernetes-map-type": "atomic"}
	}
	return nil
}

// fieldExt returns the list/map extensions of one field of a struct.
func (m applyMarkers) fieldExt(typeName, field string) object {
	td := m.types[typeName]
	if td == nil || td.Map == nil {
		return nil
	}
	for _, f := range td.Map.Fields {
		if f.Name != field {
			continue
		}
		atom := f.Type.Inlined
		if f.Type.NamedType != nil {
			if named := m.types[*f.Type.NamedType]; named != nil {
				atom = named.Atom
			}
		}
		switch {
		case atom.List != nil:
			switch {
			case atom.List.ElementRelationship == smd.Associative && len(atom.List.Keys) > 0:
				return object{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": atom.List.Keys}
			case atom.List.ElementRelationship == smd.Associative:
				return object{"x-kubernetes-list-type": "set"}
			case atom.List.ElementRelationship == smd.Atomic:
				return object{"x-kubernetes-list-type": "atomic"}
			}
		case atom.Map != nil && f.Type.ElementRelationship != nil && *f.Type.ElementRelationship == smd.Atomic,
			f.Type.NamedType == nil && atom.Map != nil && atom.Map.ElementRelationship == smd.Atomic:
			// a field marked atomic, or a Go map marked +mapType=atomic
			// (struct types carry their own marker in structExt)
			return object{"x-kubernetes-map-type": "atomic"}
		}
		return nil
	}
	return nil
}
