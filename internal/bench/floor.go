package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/certs"
	"github.com/skiff-sh/skiff/internal/etcd"
)

// The floor is the least an API server must do for one of the benchmark's
// creates: TLS and HTTP/2, a protobuf body in, the object as JSON into etcd
// through the same create-if-absent transaction, protobuf out. No
// authentication, defaults, validation, managedFields, watch cache or
// metrics. `bench api --floor` runs the same load against it, so the ratio
// it prints is the ceiling of the ratio on this machine.
type floorHandler struct{ etcd *clientv3.Client }

var (
	floorCodec  = protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	configMapV1 = schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
)

// ServeHTTP answers POST /api/v1/namespaces/<ns>/configmaps only.
func (h floorHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method != http.MethodPost || len(parts) != 5 || parts[4] != "configmaps" {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o, _, err := floorCodec.Decode(body, &configMapV1, &corev1.ConfigMap{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cm := o.(*corev1.ConfigMap)
	cm.Namespace, cm.UID, cm.CreationTimestamp = parts[3], types.UID(uuid.NewString()), metav1.Now()
	data, err := json.Marshal(cm)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	key := "/registry/configmaps/" + cm.Namespace + "/" + cm.Name
	resp, err := h.etcd.Txn(r.Context()).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(data))).Commit()
	switch {
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	case !resp.Succeeded:
		http.Error(w, "already exists", http.StatusConflict)
		return
	}
	cm.ResourceVersion = strconv.FormatInt(resp.Header.Revision, 10)
	var out bytes.Buffer
	if err := floorCodec.Encode(cm, &out); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.kubernetes.protobuf")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(out.Bytes())
}

// startFloor starts an embedded etcd in dir and the floor handler in front
// of it; stop ends both.
func startFloor(ctx context.Context, dir string) (cfg *rest.Config, backend *etcd.Backend, stop func(), err error) {
	backend, err = etcd.Start(ctx, etcd.Options{Dir: filepath.Join(dir, "etcd")})
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := certs.SelfSigned("floor")
	if err != nil {
		backend.Close()
		return nil, nil, nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		backend.Close()
		return nil, nil, nil, err
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	srv := &http.Server{Handler: floorHandler{backend.Client}, TLSConfig: tc, ReadHeaderTimeout: 30 * time.Second}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(tls.NewListener(l, tc)) }()
	cfg = &rest.Config{Host: "https://" + l.Addr().String(), TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	return cfg, backend, func() { _ = srv.Close(); <-served; backend.Close() }, nil
}
