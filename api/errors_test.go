package api_test

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/api/apitest"
	"github.com/skiffhq/skiff/proto"
)

const invalidDeployment = `{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "Bad_Name"},
  "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [
    {"name": "app", "resources": {"limits": {"memory": "12XB", "cpu": "1"}}}
  ]}}}
}`

const mismatchedDeployment = `{
  "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
  "spec": {"selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}
}`

// Paths the bad-input cases write to.
const (
	cmPath     = "/api/v1/namespaces/default/configmaps"
	deployPath = "/apis/apps/v1/namespaces/default/deployments"
)

// badInput is one request the server must refuse, and how.
type badInput struct {
	name     string
	call     call
	code     int
	reason   metav1.StatusReason
	messages []string
	causes   []string // field paths in details.causes, sorted
}

var badInputs = []badInput{
	{"malformed JSON", call{method: "POST", path: cmPath, body: `{"metadata": {"name": "a"`},
		400, metav1.StatusReasonBadRequest, []string{"not valid JSON"}, nil},
	{"malformed YAML", call{method: "POST", path: cmPath, ctype: "application/yaml", body: "metadata:\n  name: a\n   bad: [\n"},
		400, metav1.StatusReasonBadRequest, []string{"not valid YAML"}, nil},
	{"unknown field", call{method: "POST", path: deployPath, body: `{"metadata":{"name":"a"},"spec":{"foo":1}}`},
		400, metav1.StatusReasonBadRequest, []string{`unknown field "spec.foo"`}, nil},
	{"duplicate field", call{method: "POST", path: cmPath, body: `{"metadata":{"name":"a","name":"b"}}`},
		400, metav1.StatusReasonBadRequest, []string{`duplicate field "metadata.name"`}, nil},
	{"wrong kind", call{method: "POST", path: cmPath, body: `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"}}`},
		400, metav1.StatusReasonBadRequest, []string{"(Secret) does not match the expected kind (ConfigMap)"}, nil},
	{"wrong type", call{method: "POST", path: deployPath, body: `{"metadata":{"name":"a"},"spec":{"replicas":"three"}}`},
		400, metav1.StatusReasonBadRequest, []string{"replicas"}, nil},
	{"namespace mismatch", call{method: "POST", path: cmPath, body: `{"metadata":{"name":"a","namespace":"other"}}`},
		400, metav1.StatusReasonBadRequest, []string{"does not match the namespace"}, nil},
	{"resourceVersion on create", call{method: "POST", path: cmPath, body: `{"metadata":{"name":"a","resourceVersion":"5"}}`},
		400, metav1.StatusReasonBadRequest, []string{"resourceVersion should not be set"}, nil},
	{"bad label selector", call{method: "GET", path: cmPath + "?labelSelector=a%20in%20(", body: ""},
		400, metav1.StatusReasonBadRequest, []string{"unable to parse requirement"}, nil},
	{"unsupported field selector", call{method: "GET", path: "/api/v1/pods?fieldSelector=spec.foo%3Dbar"},
		400, metav1.StatusReasonBadRequest, []string{"field label not supported: spec.foo"}, nil},
	{"missing object", call{method: "GET", path: cmPath + "/nope"},
		404, metav1.StatusReasonNotFound, []string{`configmaps "nope" not found`}, nil},
	{"missing namespace", call{method: "POST", path: "/api/v1/namespaces/nope/configmaps", body: `{"metadata":{"name":"a"}}`},
		404, metav1.StatusReasonNotFound, []string{`namespaces "nope" not found`}, nil},
	{"missing resource", call{method: "GET", path: "/api/v1/widgets"},
		404, metav1.StatusReasonNotFound, []string{"/api/v1/widgets"}, nil},
	{"missing group", call{method: "GET", path: "/apis/batch/v1/jobs"},
		404, metav1.StatusReasonNotFound, []string{"/apis/batch/v1/jobs"}, nil},
	{"missing version", call{method: "GET", path: "/apis/apps/v2"},
		404, metav1.StatusReasonNotFound, nil, nil},
	{"missing subresource", call{method: "GET", path: cmPath + "/taken/status"},
		404, metav1.StatusReasonNotFound, nil, nil},
	{"already exists", call{method: "POST", path: cmPath, body: `{"metadata":{"name":"taken"}}`},
		409, metav1.StatusReasonAlreadyExists, []string{`configmaps "taken" already exists`}, nil},
	{"body too large", call{method: "POST", path: cmPath, body: `{"data":{"k":"` + strings.Repeat("x", 3<<20) + `"}}`},
		413, metav1.StatusReasonRequestEntityTooLarge, []string{"3145728"}, nil},
	{"unsupported media type", call{method: "POST", path: cmPath, ctype: "text/plain", body: "hello"},
		415, metav1.StatusReasonUnsupportedMediaType, []string{"text/plain"}, nil},
	{"patch with plain JSON", call{method: "PATCH", path: cmPath + "/taken", body: `{}`},
		415, metav1.StatusReasonUnsupportedMediaType, []string{"application/merge-patch+json"}, nil},
	{"server-side apply", call{method: "PATCH", path: cmPath + "/taken", ctype: "application/apply-patch+yaml", body: "data: {}"},
		415, metav1.StatusReasonUnsupportedMediaType, []string{"server-side apply"}, nil},
	{"invalid deployment", call{method: "POST", path: deployPath, body: invalidDeployment},
		422, metav1.StatusReasonInvalid, []string{`Deployment.apps "Bad_Name" is invalid`, "12XB"},
		[]string{"metadata.name", "spec.selector", "spec.template.spec.containers[0].image", "spec.template.spec.containers[0].resources.limits[memory]"}},
	{"selector does not match template", call{method: "POST", path: deployPath, body: mismatchedDeployment},
		422, metav1.StatusReasonInvalid, []string{"`selector` does not match template `labels`"}, []string{"spec.template.metadata.labels"}},
	{"configmap keys", call{method: "POST", path: cmPath, body: `{"metadata":{"name":"keys"},"data":{"bad key":"v","bad/key":"v","ok":"v"}}`},
		422, metav1.StatusReasonInvalid, []string{"data[bad key]"}, []string{"data[bad key]", "data[bad/key]"}},
	{"pod without containers", call{method: "POST", path: "/api/v1/namespaces/default/pods", body: `{"metadata":{"name":"p"},"spec":{}}`},
		422, metav1.StatusReasonInvalid, []string{"spec.containers: Required value"}, []string{"spec.containers"}},
	{"delete default namespace", call{method: "DELETE", path: "/api/v1/namespaces/default"},
		403, metav1.StatusReasonForbidden, []string{"may not be deleted"}, nil},
	{"create with a name in the path", call{method: "POST", path: cmPath + "/taken", body: `{}`},
		405, metav1.StatusReasonMethodNotAllowed, nil, nil},
	{"create without a namespace", call{method: "POST", path: "/api/v1/configmaps", body: `{"metadata":{"name":"a"}}`},
		405, metav1.StatusReasonMethodNotAllowed, nil, nil},
}

func TestBadInputs(t *testing.T) {
	s := apitest.New(t)
	call{method: "POST", path: cmPath, body: `{"metadata":{"name":"taken"}}`}.do(t, s).want(t, http.StatusCreated)
	for _, tt := range badInputs {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.call.do(t, s).want(t, tt.code)
			st := resp.status(t)
			if st.Reason != tt.reason || st.Status != metav1.StatusFailure {
				t.Fatalf("reason %q status %q, want %q: %s", st.Reason, st.Status, tt.reason, st.Message)
			}
			for _, m := range tt.messages {
				contains(t, st.Message, m)
			}
			if tt.causes != nil {
				var got []string
				for _, c := range st.Details.Causes {
					got = append(got, c.Field)
				}
				sort.Strings(got)
				if strings.Join(got, " ") != strings.Join(tt.causes, " ") {
					t.Fatalf("causes %v, want %v (%s)", got, tt.causes, st.Message)
				}
			}
		})
	}
}

func TestConflictCarriesCurrentResourceVersion(t *testing.T) {
	s := apitest.New(t)
	cms := "/api/v1/namespaces/default/configmaps"
	var cm struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	call{method: "POST", path: cms, body: `{"metadata":{"name":"a"}}`}.do(t, s).want(t, http.StatusCreated).into(t, &cm)
	old := cm.Metadata.ResourceVersion
	call{method: "PUT", path: cms + "/a", body: `{"metadata":{"name":"a","labels":{"x":"1"}}}`}.do(t, s).want(t, http.StatusOK).into(t, &cm)
	current := cm.Metadata.ResourceVersion

	stale := `{"metadata":{"name":"a","resourceVersion":"` + old + `"}}`
	for _, c := range []call{
		{method: "PUT", path: cms + "/a", body: stale},
		{method: "PATCH", path: cms + "/a", ctype: "application/merge-patch+json", body: stale},
		{method: "DELETE", path: cms + "/a", body: `{"preconditions":{"resourceVersion":"` + old + `"}}`},
	} {
		t.Run(c.method, func(t *testing.T) {
			st := c.do(t, s).want(t, http.StatusConflict).status(t)
			if st.Reason != metav1.StatusReasonConflict {
				t.Fatalf("reason %q", st.Reason)
			}
			contains(t, st.Message, "current resourceVersion "+current)
			if st.Details == nil || len(st.Details.Causes) != 1 || st.Details.Causes[0].Message != current ||
				st.Details.Causes[0].Type != proto.CauseTypeCurrentResourceVersion || st.Details.Causes[0].Field != "metadata.resourceVersion" {
				t.Fatalf("causes %+v do not carry resourceVersion %s", st.Details, current)
			}
		})
	}
	call{method: "DELETE", path: cms + "/a", body: `{"preconditions":{"uid":"not-the-uid"}}`}.do(t, s).want(t, http.StatusConflict)
	call{method: "PUT", path: cms + "/a", body: `{"metadata":{"name":"b"}}`}.do(t, s).want(t, http.StatusBadRequest)
}

func TestFieldValidationModes(t *testing.T) {
	s := apitest.New(t)
	cms := "/api/v1/namespaces/default/configmaps"
	body := func(name string) string { return `{"metadata":{"name":"` + name + `"},"foo":1,"data":{"k":"v"}}` }
	tests := []struct {
		mode    string
		code    int
		warning string
	}{
		{"", http.StatusBadRequest, ""},
		{"Strict", http.StatusBadRequest, ""},
		{"Warn", http.StatusCreated, `299 - "unknown field \"foo\""`},
		{"Ignore", http.StatusCreated, ""},
	}
	for i, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			name := "cm" + string(rune('a'+i))
			r := call{method: "POST", path: cms + "?fieldValidation=" + tt.mode, body: body(name)}.do(t, s).want(t, tt.code)
			if got := r.header.Get("Warning"); got != tt.warning {
				t.Fatalf("Warning header %q, want %q", got, tt.warning)
			}
		})
	}
	r := call{method: "PATCH", path: cms + "/cmc?fieldValidation=Warn", ctype: "application/merge-patch+json", body: `{"bar":2}`}.do(t, s).want(t, http.StatusOK)
	if got := r.header.Values("Warning"); len(got) != 1 || got[0] != `299 - "unknown field \"bar\""` {
		t.Fatalf("patch warnings %q", got)
	}
}
