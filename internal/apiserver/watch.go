package apiserver

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-sh/skiff/internal/printers"
	"github.com/skiff-sh/skiff/internal/storage"
)

func (h *resourceHandler) watch(w http.ResponseWriter, r *http.Request, req *request) error {
	opts, err := listOptions(r)
	if err != nil {
		return err
	}
	filter, err := h.filter(opts)
	if err != nil {
		return err
	}
	out, ok := negotiate(r, "Table", "PartialObjectMetadata")
	if !ok {
		return notAcceptable()
	}
	if opts.SendInitialEvents != nil && *opts.SendInitialEvents {
		if opts.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan || !opts.AllowWatchBookmarks {
			return badRequest("sendInitialEvents requires resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true")
		}
	}
	timeout := time.Duration(30+rand.IntN(30)) * time.Minute
	if opts.TimeoutSeconds != nil && *opts.TimeoutSeconds > 0 {
		timeout = time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	ctx := r.Context()
	wi, err := h.store.Watch(ctx, storage.WatchOptions{
		Namespace: req.namespace, Filter: filter, ResourceVersion: opts.ResourceVersion,
		SendInitialEvents: opts.SendInitialEvents, AllowBookmarks: opts.AllowWatchBookmarks,
	})
	if err != nil {
		return err
	}
	defer wi.Stop()

	flusher, _ := w.(http.Flusher)
	ct := out.mediaType
	if ct == mimeProtobuf {
		ct += ";stream=watch"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	var frames = protobuf.LengthDelimitedFramer.NewFrameWriter(w)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	first := true
	var buf bytes.Buffer
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			return nil
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return nil
			}
			obj := ev.Object
			switch out.as {
			case "Table":
				if ev.Type == watch.Bookmark {
					continue
				}
				t, err := printers.Table(obj, tableOptions(r), time.Now())
				if err != nil {
					continue
				}
				if !first {
					// Column definitions go only with the first event, as upstream sends them.
					t.ColumnDefinitions = nil
				}
				obj = t
			case "PartialObjectMetadata":
				obj = partialMetadata(obj)
			}
			first = false
			buf.Reset()
			if out.mediaType == mimeProtobuf {
				var raw bytes.Buffer
				if err := encode(&raw, mimeProtobuf, obj); err != nil {
					return nil
				}
				if err := protoRaw.Encode(&metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: raw.Bytes()}}, &buf); err != nil {
					return nil
				}
				if _, err := frames.Write(buf.Bytes()); err != nil {
					return nil
				}
			} else {
				data, err := h.encodeJSON(obj, out.as == "")
				if err != nil {
					return nil
				}
				buf.WriteString(`{"type":"`)
				buf.WriteString(string(ev.Type))
				buf.WriteString(`","object":`)
				buf.Write(data)
				buf.WriteString("}\n")
				if _, err := w.Write(buf.Bytes()); err != nil {
					return nil
				}
			}
			if len(wi.ResultChan()) == 0 && flusher != nil {
				flusher.Flush()
			}
		}
	}
}

// encodeJSON encodes obj; shared cache objects are encoded once for all
// watchers that receive them.
func (h *resourceHandler) encodeJSON(obj runtime.Object, cacheable bool) ([]byte, error) {
	if !cacheable {
		setTypeMeta(obj)
		return json.Marshal(obj)
	}
	if data, ok := h.enc.get(obj); ok {
		return data, nil
	}
	setTypeMeta(obj)
	data, err := json.Marshal(obj)
	if err == nil {
		h.enc.put(obj, data)
	}
	return data, err
}

// encodeCache remembers the encodings of the most recent watch objects.
type encodeCache struct {
	mu    sync.Mutex
	m     map[runtime.Object][]byte
	order [256]runtime.Object
	next  int
}

func (c *encodeCache) get(obj runtime.Object) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.m[obj]
	return d, ok
}

func (c *encodeCache) put(obj runtime.Object, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[runtime.Object][]byte, len(c.order))
	}
	if old := c.order[c.next]; old != nil {
		delete(c.m, old)
	}
	c.order[c.next] = obj
	c.next = (c.next + 1) % len(c.order)
	c.m[obj] = data
}
