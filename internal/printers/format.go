package printers

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Column definition helpers. Names keep upstream's spelling ("Up-to-date");
// kubectl upper-cases them when rendering.

var objectMetaDoc = metav1.ObjectMeta{}.SwaggerDoc()

func nameColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: objectMetaDoc["name"]}
}

func ageColumn() metav1.TableColumnDefinition {
	return stringColumn("Age", objectMetaDoc["creationTimestamp"])
}

func stringColumn(name, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: "string", Description: description}
}

func integerColumn(name, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: "integer", Description: description}
}

func booleanColumn(name, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: "boolean", Description: description}
}

// wide marks a column as priority 1: shown by kubectl only with -o wide.
func wide(c metav1.TableColumnDefinition) metav1.TableColumnDefinition {
	c.Priority = 1
	return c
}

// containerColumns are the wide Containers and Images columns of workloads.
func containerColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		wide(stringColumn("Containers", "Names of each container in the template.")),
		wide(stringColumn("Images", "Images referenced by each container in the template.")),
	}
}

// columns concatenates column definitions and groups of them.
func columns(parts ...any) []metav1.TableColumnDefinition {
	var out []metav1.TableColumnDefinition
	for _, p := range parts {
		switch v := p.(type) {
		case metav1.TableColumnDefinition:
			out = append(out, v)
		case []metav1.TableColumnDefinition:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("printers: columns: unexpected %T", p))
		}
	}
	return out
}

// Cell formatting helpers. Cells must be JSON-like values (string, int64,
// bool, ...) so that Table.DeepCopy and encoding work.

// age is upstream's translateTimestampSince relative to now.
func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// microAge is age for MicroTime timestamps.
func microAge(t metav1.MicroTime, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// containerCells lays out container names and images, comma separated.
func containerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	im := make([]string, len(containers))
	for i, c := range containers {
		n[i], im[i] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}

// orNone returns s, or "<none>" when s is empty.
func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// orUnknown returns s, or "<unknown>" when s is empty.
func orUnknown(s string) string {
	if s == "" {
		return "<unknown>"
	}
	return s
}

// boolPtr prints True/False, or <unset> for nil.
func boolPtr(b *bool) string {
	switch {
	case b == nil:
		return "<unset>"
	case *b:
		return "True"
	default:
		return "False"
	}
}

// sortedUnique returns the sorted set of non-empty strings.
func sortedUnique(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// loadBalancerAddresses joins the IPs (or hostnames) of load balancer
// ingress points, sorted and de-duplicated. Server-side tables are always
// generated wide, so the value is never truncated.
func loadBalancerAddresses[T any](ingress []T, ipAndHost func(T) (string, string)) string {
	addrs := make([]string, 0, len(ingress))
	for _, in := range ingress {
		ip, host := ipAndHost(in)
		if ip != "" {
			addrs = append(addrs, ip)
		} else {
			addrs = append(addrs, host)
		}
	}
	return strings.Join(sortedUnique(addrs), ",")
}

// firstN joins up to max items, appending " + N more..." when there are more.
// empty is returned when there are no items.
func firstN(items []string, max int, empty string) string {
	if len(items) == 0 {
		return empty
	}
	if len(items) <= max {
		return strings.Join(items, ",")
	}
	return fmt.Sprintf("%s + %d more...", strings.Join(items[:max], ","), len(items)-max)
}

// hostPort joins an address and port.
func hostPort(host string, port int32) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}
