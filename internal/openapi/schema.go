package openapi

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
)

// object is the in-memory form of every JSON object we emit. encoding/json
// sorts map keys, which is what makes the documents (and their hashes) stable.
type object = map[string]any

const refPrefix = "#/components/schemas/"

// builtinDocs describes the apimachinery types that serialize as scalars and
// carry no SwaggerDoc method (upstream takes these from Go doc comments).
var builtinDocs = map[string]string{
	"io.k8s.apimachinery.pkg.api.resource.Quantity":   "Quantity is a fixed-point representation of a number. It provides convenient marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors.\n\nThe serialization format is:\n\n<quantity> ::= <signedNumber><suffix>\n\t(Note that <suffix> may be empty, from the \"\" case in <decimalSI>.)\n<digit> ::= 0 | 1 | ... | 9\n<suffix> ::= <binarySI> | <decimalExponent> | <decimalSI>\n<binarySI> ::= Ki | Mi | Gi | Ti | Pi | Ei\n<decimalSI> ::= m | \"\" | k | M | G | T | P | E\n<decimalExponent> ::= \"e\" <signedNumber> | \"E\" <signedNumber>",
	"io.k8s.apimachinery.pkg.util.intstr.IntOrString": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, for example, a JSON field that can accept a name or number.",
	"io.k8s.apimachinery.pkg.apis.meta.v1.Time":       "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.  Wrappers are provided for many of the factory methods that the time package offers.",
	"io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime":  "MicroTime is version of Time with microsecond level precision.",
	"io.k8s.apimachinery.pkg.apis.meta.v1.Duration":   "Duration is a wrapper around time.Duration which supports correct marshaling to YAML and JSON. In particular, it marshals into strings, which can be used as map keys in json.",
	"io.k8s.apimachinery.pkg.runtime.RawExtension":    "RawExtension is used to hold extensions in external versions. To use this, make a field which has RawExtension as its type in your external version struct, and Extension as its type in your internal version struct.",
}

var (
	marshalerType = reflect.TypeFor[json.Marshaler]()
	byteType      = reflect.TypeFor[byte]()
)

// schemaBuilder walks Go types by reflection and collects one component schema
// per named struct it reaches. One builder is used per document, so every
// document is self-contained (kubectl resolves $refs only within the document).
type schemaBuilder struct {
	schemas map[string]object
	markers applyMarkers
}

func newSchemaBuilder(m applyMarkers) *schemaBuilder {
	return &schemaBuilder{schemas: map[string]object{}, markers: m}
}

// modelName is the upstream component name: the generated OpenAPIModelName()
// method where the type has one, else the Go package path with its domain
// reversed (k8s.io/api/core/v1.Pod -> io.k8s.api.core.v1.Pod).
func modelName(t reflect.Type) string {
	if n, ok := reflect.New(t).Elem().Interface().(interface{ OpenAPIModelName() string }); ok {
		return n.OpenAPIModelName()
	}
	parts := strings.Split(t.PkgPath()+"."+t.Name(), "/")
	if strings.Contains(parts[0], ".") {
		d := strings.Split(parts[0], ".")
		for i, j := 0, len(d)-1; i < j; i, j = i+1, j-1 {
			d[i], d[j] = d[j], d[i]
		}
		parts[0] = strings.Join(d, ".")
	}
	return strings.Join(parts, ".")
}

// swaggerDoc returns the generated field descriptions of t ("" is the type's own).
func swaggerDoc(t reflect.Type) map[string]string {
	if d, ok := reflect.New(t).Elem().Interface().(interface{ SwaggerDoc() map[string]string }); ok {
		return d.SwaggerDoc()
	}
	return nil
}

// ref registers the struct type t as a component (once) and returns its name.
func (b *schemaBuilder) ref(t reflect.Type) string {
	name := modelName(t)
	if _, done := b.schemas[name]; done {
		return name
	}
	b.schemas[name] = nil // placeholder: breaks recursion on self-referencing types
	b.schemas[name] = b.structSchema(t, name)
	return name
}

// isObject reports whether a registered component is an object (as opposed to
// a struct that serializes as a scalar, like Quantity or Time).
func (b *schemaBuilder) isObject(name string) bool {
	s := b.schemas[name]
	return s == nil || s["type"] == "object"
}

func (b *schemaBuilder) structSchema(t reflect.Type, name string) object {
	s := object{}
	if d := swaggerDoc(t)[""]; d != "" {
		s["description"] = d
	} else if d := builtinDocs[name]; d != "" {
		s["description"] = d
	}
	v := reflect.New(t).Elem().Interface()
	// Types that serialize specially declare their OpenAPI type themselves
	// (Quantity, IntOrString, Time, MicroTime, Duration); honor that as upstream does.
	if o, ok := v.(interface{ OpenAPISchemaType() []string }); ok {
		s["type"] = o.OpenAPISchemaType()[0]
		if f, ok := v.(interface{ OpenAPISchemaFormat() string }); ok && f.OpenAPISchemaFormat() != "" {
			s["format"] = f.OpenAPISchemaFormat()
		}
		return s
	}
	s["type"] = "object"
	// Other custom marshalers (RawExtension, FieldsV1) hold arbitrary JSON objects:
	// their Go fields say nothing about the wire format.
	if reflect.PointerTo(t).Implements(marshalerType) {
		return s
	}
	props := object{}
	var required []string
	b.addFields(t, name, props, &required)
	if len(props) > 0 {
		s["properties"] = props
	}
	if len(required) > 0 {
		sort.Strings(required)
		s["required"] = required
	}
	for k, v := range b.markers.structExt(name) {
		s[k] = v
	}
	return s
}

// addFields adds the JSON properties of struct t to props. Embedded structs
// without a JSON name (`json:",inline"`) contribute their fields directly, as
// encoding/json does. owner is the component the properties end up in, which
// is where the apply markers are looked up.
func (b *schemaBuilder) addFields(t reflect.Type, owner string, props object, required *[]string) {
	docs := swaggerDoc(t)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			for et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				b.addFields(et, owner, props, required)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		ext := object{}
		if v := f.Tag.Get("patchStrategy"); v != "" {
			ext["x-kubernetes-patch-strategy"] = v
		}
		if v := f.Tag.Get("patchMergeKey"); v != "" {
			ext["x-kubernetes-patch-merge-key"] = v
		}
		for k, v := range b.markers.fieldExt(owner, name) {
			ext[k] = v
		}
		props[name] = b.property(f.Type, docs[name], ext)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			*required = append(*required, name)
		}
	}
}

// property is the schema of a struct field: the type's schema plus the
// field's own description and extensions. OpenAPI 3.0 ignores siblings of
// $ref, so a reference that needs siblings is wrapped in allOf (as upstream).
func (b *schemaBuilder) property(t reflect.Type, desc string, ext object) object {
	s := b.typeSchema(t)
	if desc == "" && len(ext) == 0 {
		return s
	}
	if r, ok := s["$ref"]; ok {
		delete(s, "$ref")
		s["allOf"] = []any{object{"$ref": r}}
	}
	if desc != "" {
		s["description"] = desc
	}
	for k, v := range ext {
		s[k] = v
	}
	return s
}

// typeSchema maps a Go type to a schema: structs become $refs to components,
// everything else is described inline.
func (b *schemaBuilder) typeSchema(t reflect.Type) object {
	ptr := false
	for t.Kind() == reflect.Pointer {
		t, ptr = t.Elem(), true
	}
	switch t.Kind() {
	case reflect.Struct:
		name := b.ref(t)
		if ptr || !b.isObject(name) {
			return object{"$ref": refPrefix + name}
		}
		// Non-pointer struct fields are never null; upstream says so with default {}.
		return object{"allOf": []any{object{"$ref": refPrefix + name}}, "default": object{}}
	case reflect.Slice, reflect.Array:
		if t.Elem() == byteType {
			return object{"type": "string", "format": "byte"}
		}
		return object{"type": "array", "items": b.typeSchema(t.Elem())}
	case reflect.Map:
		return object{"type": "object", "additionalProperties": b.typeSchema(t.Elem())}
	case reflect.String:
		return object{"type": "string"}
	case reflect.Bool:
		return object{"type": "boolean"}
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16:
		return object{"type": "integer", "format": "int32"}
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return object{"type": "integer", "format": "int64"}
	case reflect.Float32:
		return object{"type": "number", "format": "float"}
	case reflect.Float64:
		return object{"type": "number", "format": "double"}
	default: // interfaces: arbitrary JSON
		return object{"type": "object", "x-kubernetes-preserve-unknown-fields": true}
	}
}
