// Package printers renders API objects as meta.k8s.io/v1 Tables, the
// server-side printing that `kubectl get` asks for with
// Accept: application/json;as=Table;v=v1;g=meta.k8s.io.
//
// Column names, types, formats, priorities and cell contents follow upstream
// Kubernetes' printers (pkg/printers/internalversion). As upstream's server
// does, every table carries all columns, including the priority 1 ("wide")
// ones; the client decides which ones to show.
//
// The package is table-driven: one registry maps an object's Go type to a
// small printer (column definitions plus a pure function from the object to
// its cells). Lists are printed with the printer of their item type, and types
// without a printer get upstream's default NAME / Created At columns.
package printers

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// printer describes how one Go type is rendered into table rows.
type printer struct {
	// typ is the printed pointer type, e.g. *corev1.Pod; nil for the default
	// printer.
	typ reflect.Type
	// gvk of the printed type; used to recognize unstructured objects and to
	// fill in apiVersion/kind when a row embeds the full object.
	gvk schema.GroupVersionKind
	// columns are the table's column definitions.
	columns []metav1.TableColumnDefinition
	// cells returns one cell per column for obj.
	cells func(obj runtime.Object, now time.Time) ([]any, error)
	// conditions optionally returns the row conditions for obj.
	conditions func(obj runtime.Object) []metav1.TableRowCondition
}

// entry builds the printer of API type T (registered as *T) from a typed,
// pure cell function.
func entry[T any](gvk schema.GroupVersionKind, columns []metav1.TableColumnDefinition, cells func(*T, time.Time) []any) printer {
	return printer{
		typ:     reflect.TypeFor[*T](),
		gvk:     gvk,
		columns: columns,
		cells: func(obj runtime.Object, now time.Time) ([]any, error) {
			t, ok := any(obj).(*T)
			if !ok {
				return nil, fmt.Errorf("printers: expected %T, got %T", (*T)(nil), obj)
			}
			return cells(t, now), nil
		},
	}
}

// withConditions adds a typed row-condition function to the printer of *T.
func withConditions[T any](p printer, conditions func(*T) []metav1.TableRowCondition) printer {
	p.conditions = func(obj runtime.Object) []metav1.TableRowCondition {
		if t, ok := any(obj).(*T); ok {
			return conditions(t)
		}
		return nil
	}
	return p
}

// registry maps the pointer type of an API object (e.g. *corev1.Pod) to its
// printer; byKind indexes the same printers by group/version/kind for
// unstructured objects. List types are resolved through their items.
var registry, byKind = buildRegistry(printerTable)

func buildRegistry(entries []printer) (map[reflect.Type]printer, map[schema.GroupVersionKind]printer) {
	byType := make(map[reflect.Type]printer, len(entries))
	byGVK := make(map[schema.GroupVersionKind]printer, len(entries))
	for _, e := range entries {
		if _, dup := byType[e.typ]; dup {
			panic(fmt.Sprintf("printers: duplicate printer for %v", e.typ))
		}
		byType[e.typ] = e
		byGVK[e.gvk] = e
	}
	return byType, byGVK
}

// defaultPrinter mirrors upstream's default table convertor
// (k8s.io/apiserver/pkg/registry/rest.defaultTableConvertor).
var defaultPrinter = printer{
	columns: []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: objectMetaDoc["name"]},
		{Name: "Created At", Type: "date", Description: objectMetaDoc["creationTimestamp"]},
	},
	cells: func(obj runtime.Object, _ time.Time) ([]any, error) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, fmt.Errorf("printers: cannot print %T as a table: %w", obj, err)
		}
		return []any{m.GetName(), m.GetCreationTimestamp().UTC().Format(time.RFC3339)}, nil
	},
}

// Table builds a meta.k8s.io/v1 Table for a single object or a list object
// (e.g. *corev1.PodList).
//
// Each row's Object is a RawExtension holding the object's
// PartialObjectMetadata (apiVersion meta.k8s.io/v1, kind
// PartialObjectMetadata) when includeObject is "Metadata" or empty (the
// default kubectl asks for), a copy of the full object when "Object", and
// nothing when "None". Any other policy is an error.
//
// Types without a registered printer get the default columns Name and
// Created At (type date), as upstream's default table convertor. now is the
// reference time for ages and durations.
func Table(obj runtime.Object, includeObject metav1.IncludeObjectPolicy, now time.Time) (*metav1.Table, error) {
	if obj == nil || (reflect.ValueOf(obj).Kind() == reflect.Pointer && reflect.ValueOf(obj).IsNil()) {
		return nil, fmt.Errorf("printers: nil object")
	}
	switch includeObject {
	case "", metav1.IncludeMetadata, metav1.IncludeObject, metav1.IncludeNone:
	default:
		return nil, fmt.Errorf("printers: unrecognized includeObject value: %q", includeObject)
	}

	items, itemType, err := splitItems(obj)
	if err != nil {
		return nil, err
	}
	p := printerOf(obj, items, itemType)

	table := &metav1.Table{
		TypeMeta:          metav1.TypeMeta{APIVersion: metav1.SchemeGroupVersion.String(), Kind: "Table"},
		ColumnDefinitions: slices.Clone(p.columns),
		Rows:              make([]metav1.TableRow, 0, len(items)),
	}
	if l, err := meta.ListAccessor(obj); err == nil {
		table.ResourceVersion = l.GetResourceVersion()
		table.Continue = l.GetContinue()
		table.RemainingItemCount = l.GetRemainingItemCount()
	} else if m, err := meta.CommonAccessor(obj); err == nil {
		table.ResourceVersion = m.GetResourceVersion()
	}

	for _, item := range items {
		row, err := p.row(item, includeObject, now)
		if err != nil {
			return nil, err
		}
		table.Rows = append(table.Rows, row)
	}
	return table, nil
}

// printerOf picks the printer for the items: by Go type, or for unstructured
// objects by group/version/kind (of the first item, or of the list's kind
// without its "List" suffix); the default printer otherwise.
func printerOf(obj runtime.Object, items []runtime.Object, itemType reflect.Type) printer {
	if p, ok := registry[itemType]; ok {
		return p
	}
	var gvk schema.GroupVersionKind
	switch {
	case len(items) > 0:
		if _, ok := items[0].(runtime.Unstructured); ok {
			gvk = items[0].GetObjectKind().GroupVersionKind()
		}
	case meta.IsListType(obj):
		if _, ok := obj.(runtime.Unstructured); ok {
			gvk = obj.GetObjectKind().GroupVersionKind()
			gvk.Kind = strings.TrimSuffix(gvk.Kind, "List")
		}
	}
	if p, ok := byKind[gvk]; ok && !gvk.Empty() {
		return p
	}
	return defaultPrinter
}

// typed returns obj as the printer's Go type, converting unstructured
// objects.
func (p printer) typed(obj runtime.Object) (runtime.Object, error) {
	u, ok := obj.(runtime.Unstructured)
	if !ok || p.typ == nil {
		return obj, nil
	}
	out := reflect.New(p.typ.Elem()).Interface().(runtime.Object)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), out); err != nil {
		return nil, fmt.Errorf("printers: converting %v: %w", p.gvk, err)
	}
	return out, nil
}

// row renders one object.
func (p printer) row(obj runtime.Object, includeObject metav1.IncludeObjectPolicy, now time.Time) (metav1.TableRow, error) {
	typed, err := p.typed(obj)
	if err != nil {
		return metav1.TableRow{}, err
	}
	cells, err := p.cells(typed, now)
	if err != nil {
		return metav1.TableRow{}, err
	}
	if len(cells) != len(p.columns) {
		return metav1.TableRow{}, fmt.Errorf("printers: %T: %d cells for %d columns", obj, len(cells), len(p.columns))
	}
	row := metav1.TableRow{Cells: cells}
	if p.conditions != nil {
		row.Conditions = p.conditions(typed)
	}
	row.Object, err = p.rowObject(obj, includeObject)
	return row, err
}

// rowObject returns what a row embeds for the given include policy.
func (p printer) rowObject(obj runtime.Object, includeObject metav1.IncludeObjectPolicy) (runtime.RawExtension, error) {
	switch includeObject {
	case metav1.IncludeNone:
		return runtime.RawExtension{}, nil
	case metav1.IncludeObject:
		out := obj.DeepCopyObject()
		if !p.gvk.Empty() && out.GetObjectKind().GroupVersionKind().Empty() {
			out.GetObjectKind().SetGroupVersionKind(p.gvk)
		}
		return runtime.RawExtension{Object: out}, nil
	default: // Metadata, or empty which defaults to Metadata.
		m, err := meta.Accessor(obj)
		if err != nil {
			return runtime.RawExtension{}, fmt.Errorf("printers: %T has no object metadata: %w", obj, err)
		}
		partial := meta.AsPartialObjectMetadata(m).DeepCopy()
		partial.TypeMeta = metav1.TypeMeta{APIVersion: metav1.SchemeGroupVersion.String(), Kind: "PartialObjectMetadata"}
		return runtime.RawExtension{Object: partial}, nil
	}
}

// splitItems returns the objects to print (the list items, in order, or the
// single object) and the Go type used to look up their printer.
func splitItems(obj runtime.Object) ([]runtime.Object, reflect.Type, error) {
	if !meta.IsListType(obj) {
		return []runtime.Object{obj}, reflect.TypeOf(obj), nil
	}
	items, err := meta.ExtractList(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("printers: %w", err)
	}
	// Resolve the item type from the Items field so that empty lists still
	// get their type's columns.
	var itemType reflect.Type
	if ptr, err := meta.GetItemsPtr(obj); err == nil {
		if t := reflect.TypeOf(ptr); t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Slice {
			elem := t.Elem().Elem()
			if elem.Kind() == reflect.Struct {
				itemType = reflect.PointerTo(elem)
			} else {
				itemType = elem
			}
		}
	}
	return items, itemType, nil
}
