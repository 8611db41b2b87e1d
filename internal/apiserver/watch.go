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
				raw, err := h.encodeProtobuf(obj, out.as == "")
				if err != nil {
					return nil
				}
				if err := protoRaw.Encode(&metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: raw}}, &buf); err != nil {
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
			// Flush once the watcher has nothing more queued: a burst of
			// events goes out in a few writes, not one per event.
			if flusher != nil && queued(wi) == 0 {
				flusher.Flush()
			}
		}
	}
}

// encodeJSON encodes obj; shared cache objects are encoded once for all
// watchers that receive them.
func (h *resourceHandler) encodeJSON(obj runtime.Object, cacheable bool) ([]byte, error) {
	return h.encodeShared(obj, mimeJSON, cacheable, func() ([]byte, error) {
		setTypeMeta(obj)
		return json.Marshal(obj)
	})
}

// encodeProtobuf is encodeJSON for protobuf watchers (client-go's default).
func (h *resourceHandler) encodeProtobuf(obj runtime.Object, cacheable bool) ([]byte, error) {
	return h.encodeShared(obj, mimeProtobuf, cacheable, func() ([]byte, error) {
		var raw bytes.Buffer
		err := encode(&raw, mimeProtobuf, obj)
		return raw.Bytes(), err
	})
}

func (h *resourceHandler) encodeShared(obj runtime.Object, mediaType string, cacheable bool, enc func() ([]byte, error)) ([]byte, error) {
	if !cacheable {
		return enc()
	}
	key := encodeKey{obj, mediaType}
	if data, ok := h.enc.get(key); ok {
		return data, nil
	}
	data, err := enc()
	if err == nil {
		h.enc.put(key, data)
	}
	return data, err
}

// queued is how many events a watch has ready beyond the one in hand.
func queued(wi watch.Interface) int {
	if q, ok := wi.(interface{ Queued() int }); ok {
		return q.Queued()
	}
	return len(wi.ResultChan())
}

type encodeKey struct {
	obj       runtime.Object
	mediaType string
}

// encodeCache remembers the encodings of the most recent watch objects.
type encodeCache struct {
	mu    sync.Mutex
	m     map[encodeKey][]byte
	order [256]encodeKey
	next  int
}

func (c *encodeCache) get(k encodeKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.m[k]
	return d, ok
}

func (c *encodeCache) put(k encodeKey, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[encodeKey][]byte, len(c.order))
	}
	if old := c.order[c.next]; old.obj != nil {
		delete(c.m, old)
	}
	c.order[c.next] = k
	c.next = (c.next + 1) % len(c.order)
	c.m[k] = data
}
