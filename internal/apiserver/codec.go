package apiserver

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

const (
	mimeJSON     = "application/json"
	mimeYAML     = "application/yaml"
	mimeProtobuf = "application/vnd.kubernetes.protobuf"
)

var (
	// strictCodecs report unknown and duplicate fields as strict decoding errors.
	strictCodecs = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict)
	protoCodec   = protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	protoRaw     = protobuf.NewRawSerializer(scheme.Scheme, scheme.Scheme)
)

// output is how a response is encoded, as negotiated from Accept.
type output struct {
	mediaType string // mimeJSON, mimeYAML or mimeProtobuf
	as        string // "", "Table", "PartialObjectMetadata", "PartialObjectMetadataList", "APIGroupDiscoveryList"
	asVersion string // the v= of an as= request (e.g. v2 or v2beta1 for discovery)
}

type mediaRange struct {
	typ    string
	params map[string]string
}

func parseAccept(h string) []mediaRange {
	var out []mediaRange
	for _, part := range strings.Split(h, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		typ, params, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		out = append(out, mediaRange{typ: typ, params: params})
	}
	return out
}

// negotiate picks the first acceptable media type; allowAs lists the as= forms the endpoint can produce.
func negotiate(r *http.Request, allowAs ...string) (output, bool) {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return output{mediaType: mimeJSON}, true
	}
	for _, m := range parseAccept(accept) {
		var o output
		switch m.typ {
		case mimeJSON, "*/*", "application/*":
			o.mediaType = mimeJSON
		case mimeYAML:
			o.mediaType = mimeYAML
		case mimeProtobuf:
			o.mediaType = mimeProtobuf
		default:
			continue
		}
		if as := m.params["as"]; as != "" {
			ok := false
			for _, a := range allowAs {
				if a == as {
					ok = true
				}
			}
			g, v := m.params["g"], m.params["v"]
			switch as {
			case "Table", "PartialObjectMetadata", "PartialObjectMetadataList":
				ok = ok && g == "meta.k8s.io" && (v == "v1" || v == "v1beta1")
				// Tables are JSON-only, as upstream serves them.
				if as == "Table" && o.mediaType == mimeProtobuf {
					ok = false
				}
			case "APIGroupDiscoveryList":
				ok = ok && g == "apidiscovery.k8s.io" && (v == "v2" || v == "v2beta1")
			}
			if !ok {
				continue
			}
			o.as, o.asVersion = as, v
		}
		return o, true
	}
	return output{}, false
}

// setTypeMeta fills apiVersion and kind from the scheme, as the versioning encoder would.
func setTypeMeta(obj runtime.Object) {
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Kind != "" {
		return
	}
	kinds, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil || len(kinds) == 0 {
		return
	}
	k := kinds[0]
	for _, c := range kinds {
		// metav1 types are registered in every group; prefer their home.
		if c.Group == "" && c.Version == "v1" || c.Group == "meta.k8s.io" {
			k = c
			break
		}
	}
	obj.GetObjectKind().SetGroupVersionKind(k)
}

// encode writes obj in the negotiated media type.
func encode(w io.Writer, mediaType string, obj runtime.Object) error {
	setTypeMeta(obj)
	switch mediaType {
	case mimeProtobuf:
		return protoCodec.Encode(obj, w)
	case mimeYAML:
		data, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	default:
		return jsonEncode(w, obj)
	}
}

// decodeBody decodes a request body into a new object of gvk. Strict decoding
// errors (unknown or duplicate fields) come back as strictErr with the object.
func decodeBody(contentType string, body []byte, gvk schema.GroupVersionKind, into runtime.Object) (obj runtime.Object, strictErr error, err error) {
	mt, _, perr := mime.ParseMediaType(contentType)
	if contentType == "" {
		mt = mimeJSON
	} else if perr != nil {
		return nil, nil, unsupportedMediaType(contentType)
	}
	switch mt {
	case mimeJSON, mimeYAML, "text/yaml", mimeProtobuf:
	default:
		return nil, nil, unsupportedMediaType(contentType)
	}
	obj, got, derr := strictCodecs.UniversalDeserializer().Decode(body, &gvk, into)
	if derr != nil && !(runtime.IsStrictDecodingError(derr) && obj != nil) {
		return nil, nil, badRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", gvk.Kind, gvk.Version, gvk.Kind, derr))
	}
	if got != nil && got.GroupVersion() != gvk.GroupVersion() {
		return nil, nil, badRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", got.GroupVersion(), gvk.GroupVersion()))
	}
	if got != nil && got.Kind != gvk.Kind {
		return nil, nil, badRequest(fmt.Sprintf("the kind in the data (%s) does not match the expected kind (%s)", got.Kind, gvk.Kind))
	}
	if reflect.TypeOf(obj) != reflect.TypeOf(into) {
		return nil, nil, badRequest(fmt.Sprintf("the body is a %T, not a %s", obj, gvk.Kind))
	}
	return obj, derr, nil
}

// partialMetadata is the metadata-only form of an object.
func partialMetadata(obj runtime.Object) *metav1.PartialObjectMetadata {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	om, _ := m.(*metav1.ObjectMeta)
	if om == nil {
		if a, ok := obj.(metav1.ObjectMetaAccessor); ok {
			om = a.GetObjectMeta().(*metav1.ObjectMeta)
		}
	}
	p := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}}
	if om != nil {
		p.ObjectMeta = *om
	}
	return p
}

// paramCodec decodes query parameters into ListOptions and DeleteOptions.
var paramCodec = runtime.NewParameterCodec(scheme.Scheme)
