package apiserver

import (
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// request is a parsed resource request.
type request struct {
	h         *resourceHandler
	verb      string
	namespace string
	name      string
	sub       string
	manager   string // the field manager recorded in managedFields
	applied   bool   // server-side apply already recorded the fields
}

// serveAPI routes everything under /api/ and /apis/.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var group, version string
	var rest []string
	switch {
	case parts[0] == "api" && len(parts) >= 2:
		version, rest = parts[1], parts[2:]
	case parts[0] == "apis" && len(parts) >= 2:
		group = parts[1]
		if len(parts) >= 3 {
			version, rest = parts[2], parts[3:]
		}
	default:
		writeError(w, r, notFoundPath(r.URL.Path))
		return
	}
	if group == metricsGV.Group && version == metricsGV.Version && len(rest) > 0 {
		s.serveMetricsAPI(w, r, rest)
		return
	}
	if len(rest) == 0 {
		if r.Method != http.MethodGet {
			writeError(w, r, methodNotAllowed(r.Method))
			return
		}
		s.serveDiscoveryPath(w, r, group, version)
		return
	}
	req, err := s.parse(r, group, version, rest)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := s.authorize(r, req.h.GR(), Attributes{Verb: req.verb, Namespace: req.namespace, APIGroup: group,
		Resource: req.h.Plural, Subresource: req.sub, Name: req.name}); err != nil {
		writeError(w, r, err)
		return
	}
	if req.verb != "watch" && req.sub != "log" && !streamSubresource(req.sub) { // long-running
		release, err := s.admit(req.verb)
		if err != nil {
			writeError(w, r, err)
			return
		}
		defer release()
	}
	req.manager = fieldManagerName(r)
	rec := &statusRecorder{ResponseWriter: w}
	start := time.Now()
	if req.verb == "watch" {
		g := s.metrics.watchers.WithLabelValues("WATCH", group, version, req.h.Plural, req.sub, "", "apiserver")
		g.Inc()
		defer g.Dec()
	}
	if streamSubresource(req.sub) {
		if err := s.serveStream(rec, r, req); err != nil { // stream.go
			writeError(rec, r, err)
		}
	} else {
		req.h.serve(rec, r, req)
	}
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	s.metrics.observe(req, version, rec.code, time.Since(start))
}

func (s *Server) parse(r *http.Request, group, version string, p []string) (*request, error) {
	gv := schema.GroupVersion{Group: group, Version: version}
	lookup := func(res string) *resourceHandler { return s.byGVR[gv.WithResource(res)] }
	req := &request{}
	switch {
	case p[0] == "namespaces" && len(p) >= 3 && lookup(p[2]) != nil && lookup(p[2]).Namespaced:
		req.namespace, req.h = p[1], lookup(p[2])
		p = p[3:]
	default:
		req.h = lookup(p[0])
		p = p[1:]
	}
	if req.h == nil || len(p) > 2 {
		return nil, notFoundPath(r.URL.Path)
	}
	if len(p) > 0 {
		req.name = p[0]
	}
	if len(p) > 1 {
		req.sub = p[1]
		if !req.h.HasSubresource(req.sub) {
			return nil, notFoundPath(r.URL.Path)
		}
	}
	if req.h.Namespaced && req.namespace == "" && req.name != "" {
		return nil, notFoundPath(r.URL.Path)
	}
	switch r.Method {
	case http.MethodGet:
		switch {
		case req.name != "":
			req.verb = "get"
		case r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1":
			req.verb = "watch"
		default:
			req.verb = "list"
		}
	case http.MethodPost:
		req.verb = "create"
		if req.name != "" && req.sub != "binding" && req.sub != "eviction" && !streamSubresource(req.sub) {
			return nil, methodNotAllowed("create")
		}
		if req.h.Namespaced && req.namespace == "" {
			return nil, notFoundPath(r.URL.Path)
		}
	case http.MethodPut:
		req.verb = "update"
	case http.MethodPatch:
		req.verb = "patch"
	case http.MethodDelete:
		req.verb = "delete"
		if req.name == "" {
			req.verb = "deletecollection"
		}
	default:
		return nil, methodNotAllowed(r.Method)
	}
	if (req.verb == "update" || req.verb == "patch") && req.name == "" {
		return nil, methodNotAllowed(req.verb)
	}
	return req, nil
}

// authorize asks the authorizer whether the request's user may do a, and
// answers Forbidden (naming gr) when not.
func (s *Server) authorize(r *http.Request, gr schema.GroupResource, a Attributes) error {
	a.User, _ = UserFrom(r.Context())
	if ok, reason := s.authz.Authorize(r.Context(), a); !ok {
		return apierrors.NewForbidden(gr, a.Name, forbiddenReason(reason))
	}
	return nil
}

func forbiddenReason(reason string) error {
	if reason == "" {
		reason = "access denied"
	}
	return errString(reason)
}

type errString string

func (e errString) Error() string { return string(e) }

// admit applies the max-in-flight limits: excess requests get 429.
func (s *Server) admit(verb string) (func(), error) {
	ch := s.readOnly
	switch verb {
	case "create", "update", "patch", "delete", "deletecollection":
		ch = s.mutating
	}
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	default:
		return nil, apierrors.NewTooManyRequests("Too many requests, please try again later.", 1)
	}
}

// fieldManagerName is the fieldManager parameter or, as upstream, the user
// agent's name before its first slash.
func fieldManagerName(r *http.Request) string {
	if m := r.URL.Query().Get("fieldManager"); m != "" {
		return m
	}
	ua := r.Header.Get("User-Agent")
	if i := strings.IndexByte(ua, '/'); i >= 0 {
		ua = ua[:i]
	}
	if len(ua) > 128 {
		ua = ua[:128]
	}
	return ua
}
