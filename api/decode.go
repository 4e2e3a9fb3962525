package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/proto"
)

// readBody reads the request body, refusing more than MaxBodyBytes with 413.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, tooLarge(s.cfg.MaxBodyBytes)
		}
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading request body: %v", err))
	}
	return body, nil
}

// mediaType returns the request's content type without parameters.
func mediaType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return strings.TrimSpace(r.Header.Get("Content-Type"))
	}
	return mt
}

// bodyJSON returns the body as JSON, converting YAML; other media types
// are refused with 415.
func bodyJSON(r *http.Request, body []byte) ([]byte, error) {
	switch mt := mediaType(r); mt {
	case "", "application/json":
		return body, nil
	case "application/yaml", "application/x-yaml", "text/yaml":
		data, err := yaml.YAMLToJSON(body)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the body of the request is not valid YAML: %v", err))
		}
		return data, nil
	default:
		return nil, unsupportedMediaType(mt, "application/json", "application/yaml")
	}
}

// decodeInto decodes a small request body (options, bindings, scales) in
// JSON, YAML or protobuf into into.
func decodeInto(r *http.Request, body []byte, into runtime.Object) error {
	if mediaType(r) == proto.ContentTypeProtobuf {
		if _, _, err := proto.Protobuf.Decode(body, nil, into); err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("the body of the request is not a valid %T: %v", into, err))
		}
		return nil
	}
	data, err := bodyJSON(r, body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, into); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("the body of the request is not a valid %T: %v", into, err))
	}
	return nil
}

// decodeProtobuf decodes a protobuf-encoded object of kind.
func decodeProtobuf(kind *proto.Kind, body []byte) (proto.Object, error) {
	obj := kind.New()
	out, gvk, err := proto.Protobuf.Decode(body, nil, obj)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the body of the request is not a valid %s: %v", kind.GVK.Kind, err))
	}
	if gvk != nil && gvk.Kind != "" && *gvk != kind.GVK {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the kind in the data (%s) does not match the expected kind (%s)", gvk, kind.GVK))
	}
	o, ok := out.(proto.Object)
	if !ok || o != obj {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the body of the request is a %T, not a %s", out, kind.GVK.Kind))
	}
	obj.GetObjectKind().SetGroupVersionKind(kind.GVK)
	return obj, nil
}

// addWarning adds a Warning response header (RFC 7234 code 299, as the
// Kubernetes API server sends them and kubectl prints them) once.
func addWarning(w http.ResponseWriter, text string) {
	v := "299 - " + strconv.Quote(text)
	for _, have := range w.Header().Values("Warning") {
		if have == v {
			return
		}
	}
	w.Header().Add("Warning", v)
}

// fieldValidation is the query parameter that chooses what happens to
// unknown fields: Strict (skiff's default) rejects them, Warn and Ignore
// drop them.
func fieldValidation(r *http.Request) string {
	switch v := r.URL.Query().Get("fieldValidation"); v {
	case "Ignore", "Warn":
		return v
	}
	return "Strict"
}

// decodeObject decodes a JSON document into a new object of kind, checking
// apiVersion and kind and (unless relaxed) unknown fields. Bad quantities
// cannot be held by the typed object, so they are dropped from the document
// and returned as field errors for the caller to report together with the
// validation errors of everything else.
func decodeObject(w http.ResponseWriter, r *http.Request, kind *proto.Kind, data []byte) (proto.Object, field.ErrorList, error) {
	var raw map[string]interface{}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the body of the request was not valid JSON: %v", err))
	}
	if raw == nil {
		return nil, nil, apierrors.NewBadRequest("the body of the request must be a JSON object")
	}
	if err := checkTypeMeta(kind, raw); err != nil {
		return nil, nil, err
	}
	quantityErrs := proto.ValidateQuantities(raw)
	if len(quantityErrs) > 0 {
		data = dropFields(raw, quantityErrs)
	}
	obj := kind.New()
	strictErrs, err := kjson.UnmarshalStrict(data, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", kind.GVK.Kind, kind.GVK.Version, kind.GVK.Kind, err))
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		switch fieldValidation(r) {
		case "Strict":
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: strict decoding error: %s",
				kind.GVK.Kind, kind.GVK.Version, kind.GVK.Kind, strings.Join(msgs, ", ")))
		case "Warn":
			for _, m := range msgs {
				addWarning(w, m)
			}
		}
	}
	obj.GetObjectKind().SetGroupVersionKind(kind.GVK)
	return obj, quantityErrs, nil
}

// dropFields removes the map entries named by errs (paths ending in a
// [key]) from raw and returns the re-encoded document.
func dropFields(raw map[string]interface{}, errs field.ErrorList) []byte {
	for _, e := range errs {
		removePath(raw, e.Field)
	}
	data, _ := json.Marshal(raw)
	return data
}

// removePath deletes the entry at a field path such as
// spec.containers[0].resources.limits[memory].
func removePath(v interface{}, path string) {
	var parts []string
	for _, seg := range strings.Split(path, ".") {
		for {
			i := strings.IndexByte(seg, '[')
			if i < 0 {
				parts = append(parts, seg)
				break
			}
			if i > 0 {
				parts = append(parts, seg[:i])
			}
			j := strings.IndexByte(seg, ']')
			parts = append(parts, "["+seg[i+1:j])
			seg = seg[j+1:]
			if seg == "" {
				break
			}
		}
	}
	for i, p := range parts {
		last := i == len(parts)-1
		switch t := v.(type) {
		case map[string]interface{}:
			key := strings.TrimPrefix(p, "[")
			if last {
				delete(t, key)
				return
			}
			v = t[key]
		case []interface{}:
			n, err := strconv.Atoi(strings.TrimPrefix(p, "["))
			if err != nil || n >= len(t) || last {
				return
			}
			v = t[n]
		default:
			return
		}
	}
}

func checkTypeMeta(kind *proto.Kind, raw map[string]interface{}) error {
	apiVersion, _ := raw["apiVersion"].(string)
	k, _ := raw["kind"].(string)
	if apiVersion == "" && k == "" {
		return nil // defaulted from the URL, as Kubernetes does
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid apiVersion %q: %v", apiVersion, err))
	}
	if gv != kind.GVK.GroupVersion() {
		return apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", apiVersion, kind.APIVersion()))
	}
	if k != kind.GVK.Kind {
		return apierrors.NewBadRequest(fmt.Sprintf("the kind in the data (%s) does not match the expected kind (%s)", k, kind.GVK.Kind))
	}
	return nil
}

// isDryRun reports whether the request asked for dryRun=All.
func isDryRun(r *http.Request) bool {
	for _, v := range r.URL.Query()["dryRun"] {
		if v == "All" {
			return true
		}
	}
	return false
}
