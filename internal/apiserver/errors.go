package apiserver

import (
	"fmt"
	"log/slog"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func badRequest(msg string) error { return apierrors.NewBadRequest(msg) }

func unsupportedMediaType(ct string) error {
	return apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "", schema.GroupResource{}, "", fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf; got %q", ct), 0, false)
}

func notAcceptable() error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusNotAcceptable, Reason: metav1.StatusReasonNotAcceptable,
		Message: "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"}}
}

func methodNotAllowed(verb string) error {
	return apierrors.NewMethodNotSupported(schema.GroupResource{}, verb)
}

func notFoundPath(path string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
		Message: "the server could not find the requested resource", Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Message: path}}}}}
}

// writeError answers with the error's metav1.Status (500 for unknown errors).
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, ok := err.(apierrors.APIStatus)
	if !ok {
		slog.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		status = apierrors.NewInternalError(err)
	}
	st := status.Status()
	st.Kind, st.APIVersion = "Status", "v1"
	if st.Status == "" {
		st.Status = metav1.StatusFailure
	}
	code := int(st.Code)
	if code == 0 {
		code = http.StatusInternalServerError
	}
	if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	out, ok := negotiate(r)
	if !ok || out.mediaType == mimeYAML {
		out.mediaType = mimeJSON
	}
	w.Header().Set("Content-Type", out.mediaType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = encode(w, out.mediaType, &st)
}

// writeObject answers with obj in the negotiated media type.
func writeObject(w http.ResponseWriter, r *http.Request, code int, out output, ro runtime.Object) {
	ct := out.mediaType
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if err := encode(w, ct, ro); err != nil {
		slog.Warn("write response", "path", r.URL.Path, "err", err)
	}
}
