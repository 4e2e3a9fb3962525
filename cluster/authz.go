package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/fsm"
	"github.com/skiffhq/skiff/proto"
)

// Headers a server uses to pass the authenticated caller along when it
// forwards a request to the leader. They are trusted only from servers.
const (
	headerForwardedUser  = "X-Skiff-Forwarded-User"
	headerForwardedGroup = "X-Skiff-Forwarded-Group"
)

type callerKey struct{}

// withCaller stores the authenticated identity in ctx.
func withCaller(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, callerKey{}, id)
}

// CallerFrom returns the identity the gate authenticated.
func CallerFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(callerKey{}).(Identity)
	return id, ok
}

// publicPaths may be used without a client certificate.
var publicPaths = map[string]bool{
	"/healthz": true, "/livez": true, "/readyz": true, "/version": true,
	PathCACert: true, PathJoin: true,
}

// gate authenticates every request on the TLS listener by its client
// certificate and authorizes it: admins may do anything; a node may read,
// write events, and change only its own Node and the pods bound to it.
type gate struct {
	store *fsm.Store
	self  string // this node's name
	next  http.Handler
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := authenticate(r)
	if publicPaths[r.URL.Path] {
		g.next.ServeHTTP(w, r)
		return
	}
	if !ok {
		writeStatus(w, apierrors.NewUnauthorized("a client certificate signed by the cluster CA is required (use the kubeconfig from skiff init or skiff kubeconfig)"))
		return
	}
	uid, err := g.authorize(id, r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	ctx := withCaller(r.Context(), id)
	if uid != "" {
		ctx = api.WithUIDPrecondition(ctx, uid)
	}
	g.next.ServeHTTP(w, r.WithContext(ctx))
}

// authenticate reads the caller from the verified client certificate; a
// server's certificate may vouch for a forwarded caller.
func authenticate(r *http.Request) (Identity, bool) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		stripServerHeaders(r)
		return Identity{}, false
	}
	id := IdentityOf(r.TLS.PeerCertificates[0])
	if !id.IsServer() {
		stripServerHeaders(r)
		return id, true
	}
	if user := r.Header.Get(headerForwardedUser); user != "" {
		return Identity{User: user, Groups: r.Header.Values(headerForwardedGroup)}, true
	}
	return id, true
}

// stripServerHeaders drops the headers only servers may send.
func stripServerHeaders(r *http.Request) {
	for _, h := range []string{headerForwardedUser, headerForwardedGroup, headerForwarded} {
		r.Header.Del(h)
	}
}

// authorize allows or refuses the request. A node's write allowed because
// of the pod it targets returns that pod's UID, which the write must then
// carry as a precondition: the check reads local state, and a same-name pod
// could be re-created on another node before the write is applied.
func (g *gate) authorize(id Identity, r *http.Request) (types.UID, error) {
	if id.InGroup(GroupMasters) {
		return "", nil
	}
	info, isResource := api.ParseRequestInfo(r)
	if !isResource {
		if strings.HasPrefix(r.URL.Path, "/debug/") {
			return "", apierrors.NewForbidden(schema.GroupResource{}, "", denial(fmt.Sprintf("User %q cannot use %s", id.User, r.URL.Path)))
		}
		if strings.HasPrefix(r.URL.Path, "/skiff/") {
			if id.IsServer() && strings.HasPrefix(r.URL.Path, "/skiff/v1/internal/") {
				return "", nil
			}
			return "", apierrors.NewForbidden(schema.GroupResource{}, "", denial(fmt.Sprintf("User %q cannot use %s", id.User, r.URL.Path)))
		}
		return "", nil // discovery, openapi, version
	}
	if node := id.NodeName(); node != "" {
		if info.Verb == "create" && info.Kind.Resource == "nodes" && info.Subresource == "" {
			// Registration: the name is in the body, not the URL.
			name, err := bodyObjectName(r, info)
			if err != nil {
				return "", err
			}
			info.Name = name
		}
		if ok, uid := g.nodeMay(node, info); ok {
			return uid, nil
		}
	}
	return "", forbidden(id, info)
}

// nodeMay is the node authorizer: reads are open, writes are limited to the
// node's own Node object, its pods' status and final deletion, and events.
// A pod write is allowed for the pod's UID, which it returns.
func (g *gate) nodeMay(node string, info api.RequestInfo) (bool, types.UID) {
	switch info.Verb {
	case "get", "list", "watch":
		if info.Kind.Resource == "secrets" {
			// Only one by one, and only those its own pods refer to.
			return info.Verb == "get" && info.Subresource == "" && g.podsOnNodeUseSecret(node, info.Namespace, info.Name), ""
		}
		return info.Subresource == "" || info.Subresource == "status", ""
	}
	switch info.Kind.Resource {
	case "events":
		return info.Verb == "create" || info.Verb == "update" || info.Verb == "patch", ""
	case "nodes":
		return info.Name == node && (info.Subresource == "" || info.Subresource == "status") && info.Verb != "delete" && info.Verb != "deletecollection", ""
	case "pods":
		if info.Subresource == "status" && (info.Verb == "update" || info.Verb == "patch") || info.Subresource == "" && info.Verb == "delete" {
			kind, _ := proto.KindForResource("", "pods")
			obj, ok := g.store.Get(kind, info.Namespace, info.Name)
			if !ok {
				// A 404 is no secret; but the pod may be applied before
				// the delete runs, so the delete may match no pod at all.
				return info.Verb == "delete", noPodUID
			}
			pod, ok := obj.(*corev1.Pod)
			if !ok || pod.Spec.NodeName != node {
				return false, ""
			}
			return true, pod.UID
		}
	}
	return false, ""
}

// noPodUID is a UID precondition no object has: a node's delete of a pod
// the authorizer did not find must not remove one created meanwhile.
const noPodUID types.UID = "skiff:no-such-pod"

// podsOnNodeUseSecret reports whether a pod bound to node refers to the
// Secret namespace/name (environment, volumes, image pull secrets), like
// Kubernetes' node authorizer graph.
func (g *gate) podsOnNodeUseSecret(node, namespace, name string) bool {
	if name == "" || namespace == "" {
		return false
	}
	kind, _ := proto.KindForResource("", "pods")
	pods, _ := g.store.List(kind, namespace, func(o proto.Object) bool {
		p, ok := o.(*corev1.Pod)
		return ok && p.Spec.NodeName == node
	})
	for _, o := range pods {
		if podUsesSecret(o.(*corev1.Pod), name) {
			return true
		}
	}
	return false
}

// podUsesSecret reports whether the pod's spec names the Secret: image pull
// secrets, container environments, secret and projected volumes and CSI
// node-publish secrets.
func podUsesSecret(pod *corev1.Pod, name string) bool {
	for _, r := range pod.Spec.ImagePullSecrets {
		if r.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if containerUsesSecret(&c, name) {
			return true
		}
	}
	for _, c := range pod.Spec.Containers {
		if containerUsesSecret(&c, name) {
			return true
		}
	}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.Secret != nil && v.Secret.SecretName == name:
			return true
		case v.CSI != nil && v.CSI.NodePublishSecretRef != nil && v.CSI.NodePublishSecretRef.Name == name:
			return true
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.Secret != nil && src.Secret.Name == name {
					return true
				}
			}
		}
	}
	return false
}

func containerUsesSecret(c *corev1.Container, name string) bool {
	for _, from := range c.EnvFrom {
		if from.SecretRef != nil && from.SecretRef.Name == name {
			return true
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == name {
			return true
		}
	}
	return false
}

func forbidden(id Identity, info api.RequestInfo) error {
	res := info.Kind.Resource
	if info.Subresource != "" {
		res += "/" + info.Subresource
	}
	where := ""
	if info.Namespace != "" {
		where = fmt.Sprintf(" in the namespace %q", info.Namespace)
	}
	return apierrors.NewForbidden(info.Kind.GroupVersionResource().GroupResource(), info.Name,
		denial(fmt.Sprintf("User %q cannot %s resource %q in API group %q%s", id.User, info.Verb, res, info.Kind.GVK.Group, where)))
}

// writeStatus writes a Kubernetes Status error.
func writeStatus(w http.ResponseWriter, err error) {
	st := apierrors.NewInternalError(err).ErrStatus
	if se, ok := err.(apierrors.APIStatus); ok {
		st = se.Status()
	}
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	writeJSONBody(w, &st)
}

// maxAuthzBody bounds how much of a body the gate reads to authorize it.
const maxAuthzBody = 3 << 20

// bodyObjectName reads the object a create request carries (JSON, YAML or
// protobuf) to learn its name, and puts the body back for the handler.
func bodyObjectName(r *http.Request, info api.RequestInfo) (string, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAuthzBody+1))
	r.Body.Close()
	if err != nil {
		return "", apierrors.NewBadRequest(fmt.Sprintf("reading request body: %v", err))
	}
	if len(body) > maxAuthzBody {
		return "", tooLargeBody()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	obj := info.Kind.New()
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == proto.ContentTypeProtobuf {
		if _, _, err := proto.Protobuf.Decode(body, nil, obj); err != nil {
			return "", apierrors.NewBadRequest(fmt.Sprintf("decoding body: %v", err))
		}
	} else if err := yaml.Unmarshal(body, obj); err != nil {
		return "", apierrors.NewBadRequest(fmt.Sprintf("decoding body: %v", err))
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", apierrors.NewBadRequest(err.Error())
	}
	return m.GetName(), nil
}

// denial is an authorization refusal worded like Kubernetes' ("User ...").
type denial string

func (d denial) Error() string { return string(d) }
