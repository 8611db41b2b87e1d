package apiserver

import (
	"net/http"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	objectVerbs = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
	// subresourceInfo gives each subresource's kind and verbs.
	subresourceInfo = map[string]struct {
		gvk   *schema.GroupVersionKind // nil: the parent's kind
		verbs []string
	}{
		"status":   {nil, []string{"get", "patch", "update"}},
		"scale":    {&schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}, []string{"get", "patch", "update"}},
		"binding":  {&schema.GroupVersionKind{Version: "v1", Kind: "Binding"}, []string{"create"}},
		"eviction": {&schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "Eviction"}, []string{"create"}},
		"finalize": {nil, []string{"update"}},
		"log":      {nil, []string{"get"}},
		// Streaming (stream.go): the options kinds, as upstream lists them.
		"exec":        {&schema.GroupVersionKind{Version: "v1", Kind: "PodExecOptions"}, []string{"create", "get"}},
		"attach":      {&schema.GroupVersionKind{Version: "v1", Kind: "PodAttachOptions"}, []string{"create", "get"}},
		"portforward": {&schema.GroupVersionKind{Version: "v1", Kind: "PodPortForwardOptions"}, []string{"create", "get"}},
	}
)

type groupVersion struct{ name, version string }

// discoveryDocs are built once: the served resources do not change at run time.
type discoveryDocs struct {
	groupOrder []groupVersion
	resources  map[groupVersion]*metav1.APIResourceList
	aggregated map[string]*apidiscoveryv2.APIGroupDiscoveryList // "core" and "apis"
}

func buildDiscovery(handlers []*resourceHandler) *discoveryDocs {
	d := &discoveryDocs{resources: map[groupVersion]*metav1.APIResourceList{}, aggregated: map[string]*apidiscoveryv2.APIGroupDiscoveryList{}}
	versions := map[groupVersion]*apidiscoveryv2.APIVersionDiscovery{}
	for _, h := range handlers {
		r := h.Resource
		gv := groupVersion{r.GVK.Group, r.GVK.Version}
		list, ok := d.resources[gv]
		if !ok {
			list = &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: r.GVK.GroupVersion().String()}
			d.resources[gv] = list
			versions[gv] = &apidiscoveryv2.APIVersionDiscovery{Version: gv.version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
			if gv.name != "" {
				d.groupOrder = append(d.groupOrder, gv)
			}
		}
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: r.Plural, SingularName: r.Singular, Namespaced: r.Namespaced, Kind: r.GVK.Kind,
			Verbs: objectVerbs, ShortNames: r.ShortNames, Categories: r.Categories,
		})
		scope := apidiscoveryv2.ScopeCluster
		if r.Namespaced {
			scope = apidiscoveryv2.ScopeNamespace
		}
		rd := apidiscoveryv2.APIResourceDiscovery{
			Resource: r.Plural, SingularResource: r.Singular, Scope: scope, Verbs: objectVerbs,
			ShortNames: r.ShortNames, Categories: r.Categories,
			ResponseKind: &metav1.GroupVersionKind{Group: r.GVK.Group, Version: r.GVK.Version, Kind: r.GVK.Kind},
		}
		for _, sub := range r.Subresources {
			info := subresourceInfo[sub]
			gvk := r.GVK
			if info.gvk != nil {
				gvk = *info.gvk
			}
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: r.Plural + "/" + sub, Namespaced: r.Namespaced, Kind: gvk.Kind, Group: gvk.Group, Version: gvk.Version, Verbs: info.verbs,
			})
			rd.Subresources = append(rd.Subresources, apidiscoveryv2.APISubresourceDiscovery{
				Subresource: sub, Verbs: info.verbs,
				ResponseKind: &metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
			})
		}
		versions[gv].Resources = append(versions[gv].Resources, rd)
	}
	core := &apidiscoveryv2.APIGroupDiscoveryList{}
	if v, ok := versions[groupVersion{"", "v1"}]; ok {
		core.Items = []apidiscoveryv2.APIGroupDiscovery{{Versions: []apidiscoveryv2.APIVersionDiscovery{*v}}}
	}
	apis := &apidiscoveryv2.APIGroupDiscoveryList{}
	for _, gv := range d.groupOrder {
		apis.Items = append(apis.Items, apidiscoveryv2.APIGroupDiscovery{
			ObjectMeta: metav1.ObjectMeta{Name: gv.name},
			Versions:   []apidiscoveryv2.APIVersionDiscovery{*versions[gv]},
		})
	}
	d.aggregated["core"], d.aggregated["apis"] = core, apis
	return d
}

// writeAggregated answers with the aggregated (v2) form when the client asked for it.
func (s *Server) writeAggregated(w http.ResponseWriter, r *http.Request, which string) bool {
	out, ok := negotiate(r, "APIGroupDiscoveryList")
	if !ok || out.as != "APIGroupDiscoveryList" || out.mediaType == mimeYAML {
		return false
	}
	list := s.discovery.aggregated[which].DeepCopy()
	list.APIVersion = "apidiscovery.k8s.io/" + out.asVersion
	list.Kind = "APIGroupDiscoveryList"
	for i := range list.Items {
		list.Items[i].APIVersion, list.Items[i].Kind = list.APIVersion, "APIGroupDiscovery"
	}
	w.Header().Set("Content-Type", out.mediaType+";g=apidiscovery.k8s.io;v="+out.asVersion+";as=APIGroupDiscoveryList")
	w.Header().Set("Vary", "Accept")
	if out.mediaType == mimeProtobuf {
		_ = protoCodec.Encode(list, w)
		return true
	}
	_ = jsonEncode(w, list)
	return true
}

func (s *Server) serveLegacyDiscovery(w http.ResponseWriter, r *http.Request) {
	if s.writeAggregated(w, r, "core") {
		return
	}
	w.Header().Set("Content-Type", mimeJSON)
	_ = jsonEncode(w, &metav1.APIVersions{
		TypeMeta:                   metav1.TypeMeta{Kind: "APIVersions"},
		Versions:                   []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}},
	})
}

func (s *Server) groupList() *metav1.APIGroupList {
	l := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	for _, gv := range s.discovery.groupOrder {
		l.Groups = append(l.Groups, s.group(gv.name))
	}
	return l
}

func (s *Server) group(name string) metav1.APIGroup {
	g := metav1.APIGroup{TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}, Name: name}
	for _, gv := range s.discovery.groupOrder {
		if gv.name == name {
			v := metav1.GroupVersionForDiscovery{GroupVersion: name + "/" + gv.version, Version: gv.version}
			g.Versions = append(g.Versions, v)
			g.PreferredVersion = v
		}
	}
	return g
}

func (s *Server) serveGroupDiscovery(w http.ResponseWriter, r *http.Request) {
	if s.writeAggregated(w, r, "apis") {
		return
	}
	w.Header().Set("Content-Type", mimeJSON)
	_ = jsonEncode(w, s.groupList())
}

// serveDiscoveryPath answers /api/v1, /apis/<group> and /apis/<group>/<version>.
func (s *Server) serveDiscoveryPath(w http.ResponseWriter, r *http.Request, group, version string) {
	if version == "" {
		g := s.group(group)
		if len(g.Versions) == 0 {
			writeError(w, r, notFoundPath(r.URL.Path))
			return
		}
		w.Header().Set("Content-Type", mimeJSON)
		_ = jsonEncode(w, g)
		return
	}
	list, ok := s.discovery.resources[groupVersion{group, version}]
	if !ok {
		writeError(w, r, notFoundPath(r.URL.Path))
		return
	}
	w.Header().Set("Content-Type", mimeJSON)
	_ = jsonEncode(w, list)
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/openapi/v3" || p == "/openapi/v3/" {
		w.Header().Set("Content-Type", mimeJSON)
		_, _ = w.Write(s.openapi.Index)
		return
	}
	key := p[len("/openapi/v3/"):]
	doc, ok := s.openapi.Docs[key]
	if !ok {
		writeError(w, r, notFoundPath(p))
		return
	}
	w.Header().Set("Content-Type", mimeJSON)
	if r.URL.Query().Get("hash") == s.openapi.Hashes[key] {
		// The hash names this exact document: clients may cache it for good.
		w.Header().Set("Cache-Control", "public, immutable")
	}
	w.Header().Set("Etag", `"`+s.openapi.Hashes[key]+`"`)
	_, _ = w.Write(doc)
}
