package apiserver

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestStreamContainer(t *testing.T) {
	one := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "main"}}, InitContainers: []corev1.Container{{Name: "init"}}}}
	two := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}}}
	for _, tc := range []struct {
		pod       *corev1.Pod
		asked     string
		want, err string
	}{
		{pod: one, want: "main"},
		{pod: one, asked: "main", want: "main"},
		{pod: one, asked: "init", want: "init"},
		{pod: one, asked: "nope", err: "container nope is not valid for pod p"},
		{pod: two, err: "a container name must be specified for pod p, choose one of: [a b]"},
		{pod: two, asked: "b", want: "b"},
	} {
		got, err := streamContainer(tc.pod, tc.asked)
		switch {
		case tc.err != "":
			if !apierrors.IsBadRequest(err) || err.Error() != tc.err {
				t.Errorf("%q: %v, want BadRequest %q", tc.asked, err, tc.err)
			}
		case err != nil || got != tc.want:
			t.Errorf("%q: %q, %v; want %q", tc.asked, got, err, tc.want)
		}
	}
}

func TestFlag(t *testing.T) {
	q := url.Values{"a": {"true"}, "b": {"1"}, "c": {"false"}, "d": {"True"}}
	for k, want := range map[string]bool{"a": true, "b": true, "c": false, "d": true, "missing": false} {
		if got := flag(q, k); got != want {
			t.Errorf("flag %s: %v, want %v", k, got, want)
		}
	}
}

// The metrics recorder wraps the connection's writer; upgrades need the
// one underneath.
func TestHijackableUnwrapsTheRecorder(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		if _, ok := hijackable(rec).(http.Hijacker); !ok {
			t.Error("hijackable did not find the connection's writer")
		}
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
