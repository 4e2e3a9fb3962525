package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/agent/agentapi"
)

// Handler returns the agent's HTTP API (see package agentapi for the
// paths). Run serves it on the agent's listener; it is exported for
// callers that serve it elsewhere.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", a.serveLogs)
	mux.HandleFunc("GET /exec/{namespace}/{pod}/{container}", a.serveExec)
	mux.HandleFunc("POST /exec/{namespace}/{pod}/{container}", a.serveExec)
	mux.HandleFunc("GET /portForward/{namespace}/{pod}", a.servePortForward)
	mux.HandleFunc("POST /portForward/{namespace}/{pod}", a.servePortForward)
	mux.HandleFunc("POST "+agentapi.ImageLoadPath, a.serveImageLoad)
	mux.HandleFunc("GET "+agentapi.ImagesPath, a.serveImages)
	mux.HandleFunc("DELETE "+agentapi.ImagesPath+"/{ref...}", a.serveImageRemove)
	return mux
}

// target is a container named in a request path.
type target struct {
	pod       *corev1.Pod
	container *corev1.Container
	latest    ContainerStatus // its newest attempt
	exists    bool            // latest is set
}

// resolve finds the pod and container of a request and the container's
// newest attempt.
func (a *Agent) resolve(r *http.Request) (target, error) {
	ns, name, cname := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	obj, ok, err := a.podInformer.GetIndexer().GetByKey(ns + "/" + name)
	if err != nil {
		return target{}, apierrors.NewInternalError(err)
	}
	if !ok {
		return target{}, apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	pod := obj.(*corev1.Pod)
	c := findContainer(pod, cname)
	if c == nil {
		return target{}, apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", cname, name))
	}
	t := target{pod: pod, container: c}
	for _, st := range a.cache.pod(string(pod.UID)) {
		if st.Name == cname && (!t.exists || st.Attempt > t.latest.Attempt) {
			t.latest, t.exists = st, true
		}
	}
	return t, nil
}

// serveLogs streams a container's log (kubelet's containerLogs).
func (a *Agent) serveLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := LogOptions{Follow: boolParam(q.Get("follow")), Previous: boolParam(q.Get("previous"))}
	if n, err := strconv.Atoi(q.Get("tailLines")); err == nil && n >= 0 {
		opts.TailLines = n
		if n == 0 {
			return // zero lines asked: an empty log
		}
	}
	if n, err := strconv.ParseInt(q.Get("limitBytes"), 10, 64); err == nil && n > 0 {
		opts.LimitBytes = n
	}
	t, err := a.resolve(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	switch {
	case !t.exists:
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is waiting to start: %s",
			t.container.Name, t.pod.Name, reasonContainerCreating)))
		return
	case opts.Previous && t.latest.Attempt == 0:
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("previous terminated container %q in pod %q not found",
			t.container.Name, t.pod.Name)))
		return
	}
	lw := &lazyWriter{w: w, rc: http.NewResponseController(w), flush: opts.Follow}
	err = a.rt.ReadLogs(r.Context(), t.latest.ID, opts, lw)
	if err != nil && !lw.started && r.Context().Err() == nil {
		writeStatus(w, err)
	}
}

// lazyWriter sends the response header with the first byte, so that an
// error before any output can still become an error status.
type lazyWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	flush   bool
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "text/plain")
		l.w.WriteHeader(http.StatusOK)
	}
	n, err := l.w.Write(p)
	if err == nil && l.flush {
		err = l.rc.Flush()
	}
	return n, err
}

// serveImageLoad imports an image archive (the request body).
func (a *Agent) serveImageLoad(w http.ResponseWriter, r *http.Request) {
	imgs, err := a.rt.ImportImage(r.Context(), r.Body)
	for _, img := range imgs {
		a.images.set(img)
	}
	if len(imgs) > 0 {
		a.workers.imageLoaded()
	}
	if err != nil {
		writeStatus(w, err)
		return
	}
	writeJSON(w, http.StatusOK, imgs)
}

// serveImages lists the node's images.
func (a *Agent) serveImages(w http.ResponseWriter, r *http.Request) {
	imgs, err := a.rt.ListImages(r.Context())
	if err != nil {
		writeStatus(w, err)
		return
	}
	if imgs == nil {
		imgs = []Image{}
	}
	writeJSON(w, http.StatusOK, imgs)
}

// serveImageRemove deletes an image name, unless a container that is not
// exited uses it.
func (a *Agent) serveImageRemove(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("ref")
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		writeStatus(w, fmt.Errorf("%w: %q: %v", ErrInvalidImageName, ref, err))
		return
	}
	for _, c := range a.cache.all() {
		if (c.Image == named.String() || c.Image == ref) && !exited(c) {
			writeStatus(w, apierrors.NewConflict(corev1.Resource("images"), ref,
				fmt.Errorf("in use by container %s of pod %s/%s", c.Name, c.PodNamespace, c.PodName)))
			return
		}
	}
	if err := a.rt.RemoveImage(r.Context(), ref); err != nil {
		writeStatus(w, err)
		return
	}
	writeJSON(w, http.StatusOK, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess})
}

// writeStatus writes err as a metav1.Status with a matching HTTP code.
func writeStatus(w http.ResponseWriter, err error) {
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		switch {
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrImageNotPresent):
			se = statusError(http.StatusNotFound, metav1.StatusReasonNotFound, err)
		case errors.Is(err, ErrInvalidSpec), errors.Is(err, ErrInvalidImageName):
			se = apierrors.NewBadRequest(err.Error())
		case errors.Is(err, ErrUnavailable):
			se = apierrors.NewServiceUnavailable(err.Error())
		default:
			se = apierrors.NewInternalError(err)
		}
	}
	st := se.Status()
	st.Kind, st.APIVersion = "Status", "v1"
	code := int(st.Code)
	if code == 0 {
		code = http.StatusInternalServerError
	}
	writeJSON(w, code, &st)
}

// statusError wraps err as a Kubernetes status error.
func statusError(code int32, reason metav1.StatusReason, err error) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: code, Reason: reason, Message: err.Error()}}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// boolParam parses a Kubernetes boolean query value.
func boolParam(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}
