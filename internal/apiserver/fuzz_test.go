package apiserver

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/skiff-sh/skiff/internal/registry"
)

// FuzzDecodeDefaultValidate feeds arbitrary bodies through what a create does
// before storage: decoding (JSON, YAML, protobuf), defaulting and validation,
// for every kind. Nothing may panic. Run longer with:
//
//	go test -run XXX -fuzz FuzzDecodeDefaultValidate ./internal/apiserver/
func FuzzDecodeDefaultValidate(f *testing.F) {
	seeds := []string{
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"x","ports":[{"containerPort":80}],"livenessProbe":{"httpGet":{"port":"http"}}}],"volumes":[{"name":"v","configMap":{"name":"c"}}]}}`,
		`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"x"}]}}}}`,
		`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"completions":3,"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"x"}]}}}}`,
		`{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"c"},"spec":{"schedule":"*/5 * * * *","jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"OnFailure","containers":[{"name":"c","image":"x"}]}}}}}}`,
		`{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"type":"NodePort","ports":[{"port":80,"targetPort":"http"}],"selector":{"a":"b"}}}`,
		`{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"i"},"spec":{"rules":[{"http":{"paths":[{"path":"/","pathType":"Prefix","backend":{"service":{"name":"s","port":{"number":80}}}}]}}]}}`,
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n",
		`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"stringData":{"a":"b"},"data":{"c":"ZA=="}}`,
		`{"spec":{"containers":null,"replicas":-1}}`,
		"k8s\x00\x0a\x02v1",
		`[]`, `{"metadata":{"name":""}}`, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"a/b/c":"x"}},"spec":{"containers":[{"name":"c","image":"x","resources":{"limits":{"cpu":"-1"}}}]}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, r := range registry.All() {
			for _, ct := range []string{mimeJSON, mimeYAML, mimeProtobuf} {
				obj, _, err := decodeBody(ct, body, r.GVK, r.New())
				if err != nil || obj == nil {
					continue
				}
				if _, err := meta.Accessor(obj); err != nil {
					continue
				}
				old := obj.DeepCopyObject()
				if r.Default != nil {
					r.Default(obj)
				}
				if r.PrepareForCreate != nil {
					r.PrepareForCreate(obj)
				}
				if r.Validate != nil {
					_ = r.Validate(obj)
				}
				if r.ValidateUpdate != nil {
					_ = r.ValidateUpdate(obj, old)
				}
				_ = registry.SpecChanged(obj, old)
			}
		}
	})
}
