package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	goruntime "runtime"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/proto"
)

func goVersion() string { return goruntime.Version() }

// writeJSON writes v as JSON with the given code.
func writeJSON(w http.ResponseWriter, code int, v interface{}) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(code)
	w.Write(data)
	w.Write([]byte{'\n'})
}

// encoding is a response media type skiff can produce.
type encoding int

const (
	encJSON encoding = iota
	encYAML
	encProtobuf
)

// negotiate picks the response encoding from the Accept header, in the
// client's order of preference; an Accept naming nothing skiff speaks is
// answered with JSON, like Kubernetes does for errors.
func negotiate(r *http.Request) encoding {
	accept := r.Header.Get("Accept")
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || params["as"] != "" {
			continue
		}
		switch mt {
		case "application/json", "*/*", "application/*":
			return encJSON
		case "application/yaml":
			return encYAML
		case proto.ContentTypeProtobuf:
			return encProtobuf
		}
	}
	return encJSON
}

// writeEncoded writes obj in the encoding the client prefers.
func writeEncoded(w http.ResponseWriter, r *http.Request, code int, obj runtime.Object) {
	var (
		data []byte
		err  error
		ct   string
	)
	switch negotiate(r) {
	case encYAML:
		data, err = yaml.Marshal(obj)
		ct = "application/yaml"
	case encProtobuf:
		data, err = runtime.Encode(proto.Protobuf, obj)
		ct = proto.ContentTypeProtobuf
	default:
		writeJSON(w, code, obj)
		return
	}
	if err != nil {
		writeError(w, apierrors.NewInternalError(err))
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(code)
	w.Write(data)
}

// statusOf converts any error into a Kubernetes Status.
func statusOf(err error) *metav1.Status {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st := se.Status()
		return &st
	}
	st := apierrors.NewInternalError(err).ErrStatus
	return &st
}

// writeError writes err as a metav1.Status with its HTTP code.
func writeError(w http.ResponseWriter, err error) {
	st := statusOf(err)
	st.Kind, st.APIVersion = "Status", "v1"
	code := int(st.Code)
	if code == 0 {
		code = http.StatusInternalServerError
	}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout {
		if st.Details != nil && st.Details.RetryAfterSeconds > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(st.Details.RetryAfterSeconds))
		}
	}
	writeJSON(w, code, st)
}

func notFoundPath(path string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
		Message: fmt.Sprintf("the server could not find the requested resource (path %s)", path),
	}}
}

func methodNotAllowed(method string, req *request) error {
	return apierrors.NewMethodNotSupported(req.kind.GroupVersionResource().GroupResource(), strings.ToLower(method))
}

func unsupportedMediaType(contentType string, supported ...string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusUnsupportedMediaType, Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: fmt.Sprintf("the body of the request was in an unknown format (%q) - accepted media types include: %s", contentType, strings.Join(supported, ", ")),
	}}
}

func tooLarge(limit int64) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusRequestEntityTooLarge, Reason: metav1.StatusReasonRequestEntityTooLarge,
		Message: fmt.Sprintf("the request body is larger than the limit of %d bytes", limit),
	}}
}

func gone(msg string) error {
	return apierrors.NewResourceExpired(msg)
}
