package api

import (
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/proto"
)

var allVerbs = metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

func (s *Server) apiVersions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, &metav1.APIVersions{
		TypeMeta:                   metav1.TypeMeta{Kind: "APIVersions"},
		Versions:                   []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}},
	})
}

func groupFor(name string) (metav1.APIGroup, bool) {
	for _, gv := range proto.GroupVersions() {
		if gv.Group == name && name != "" {
			v := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
			return metav1.APIGroup{
				TypeMeta:         metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
				Name:             gv.Group,
				Versions:         []metav1.GroupVersionForDiscovery{v},
				PreferredVersion: v,
			}, true
		}
	}
	return metav1.APIGroup{}, false
}

func (s *Server) apiGroups(w http.ResponseWriter, r *http.Request) {
	list := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: []metav1.APIGroup{}}
	for _, gv := range proto.GroupVersions() {
		if g, ok := groupFor(gv.Group); ok {
			list.Groups = append(list.Groups, g)
		}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) apiGroup(w http.ResponseWriter, r *http.Request) {
	g, ok := groupFor(r.PathValue("group"))
	if !ok {
		writeError(w, notFoundPath(r.URL.Path))
		return
	}
	writeJSON(w, http.StatusOK, &g)
}

func (s *Server) resourceList(w http.ResponseWriter, r *http.Request) {
	gv := schema.GroupVersion{Group: r.PathValue("group"), Version: "v1"}
	if r.PathValue("version") != "" {
		gv.Version = r.PathValue("version")
	}
	kinds := proto.KindsIn(gv)
	if len(kinds) == 0 {
		writeError(w, notFoundPath(r.URL.Path))
		return
	}
	writeJSON(w, http.StatusOK, discoveryFor(gv, kinds))
}

func discoveryFor(gv schema.GroupVersion, kinds []*proto.Kind) *metav1.APIResourceList {
	list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
	for _, k := range kinds {
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: k.Resource, SingularName: k.Singular, Namespaced: k.Namespaced, Kind: k.GVK.Kind,
			Verbs: allVerbs, ShortNames: k.ShortNames, Categories: k.Categories,
		})
		sub := func(name, kind, group, version string, verbs metav1.Verbs) {
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: k.Resource + "/" + name, Namespaced: k.Namespaced, Kind: kind, Group: group, Version: version, Verbs: verbs,
			})
		}
		if k.HasStatus {
			sub("status", k.GVK.Kind, "", "", metav1.Verbs{"get", "patch", "update"})
		}
		if k.HasScale {
			sub("scale", "Scale", "autoscaling", "v1", metav1.Verbs{"get", "patch", "update"})
		}
		switch k.Resource {
		case "pods":
			sub("binding", "Binding", "", "", metav1.Verbs{"create"})
			sub("log", "Pod", "", "", metav1.Verbs{"get"})
			sub("exec", "PodExecOptions", "", "", metav1.Verbs{"create", "get"})
			sub("portforward", "PodPortForwardOptions", "", "", metav1.Verbs{"create", "get"})
		case "namespaces":
			sub("finalize", "Namespace", "", "", metav1.Verbs{"update"})
		}
	}
	return list
}
