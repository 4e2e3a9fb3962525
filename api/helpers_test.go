package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/api/apitest"
	"github.com/skiffhq/skiff/proto"
)

// call is one raw HTTP request against the test server.
type call struct {
	method, path string
	ctype        string // Content-Type; application/json when a body is set
	accept       string
	body         string
}

// response is what a call got back.
type response struct {
	code   int
	body   []byte
	header http.Header
}

func (c call) do(t testing.TB, s *apitest.Server) response {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, s.HTTP.URL+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.body != "" {
		ct := c.ctype
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if c.accept != "" {
		req.Header.Set("Accept", c.accept)
	}
	resp, err := s.HTTP.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, body: data, header: resp.Header}
}

// want fails unless the response has code.
func (r response) want(t testing.TB, code int) response {
	t.Helper()
	if r.code != code {
		t.Fatalf("got HTTP %d, want %d: %s", r.code, code, r.body)
	}
	return r
}

// status decodes the body as a metav1.Status and checks its code matches
// the HTTP code.
func (r response) status(t testing.TB) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("body is not a Status: %v: %s", err, r.body)
	}
	success := st.Status == metav1.StatusSuccess && st.Code == 0 // as Kubernetes answers a delete
	if st.Kind != "Status" || (int(st.Code) != r.code && !success) {
		t.Fatalf("Status kind %q code %d for HTTP %d", st.Kind, st.Code, r.code)
	}
	return st
}

// into decodes the JSON body into v.
func (r response) into(t testing.TB, v interface{}) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %T: %v: %s", v, err, r.body)
	}
}

// collectionPath is the URL of a kind's collection in namespace.
func collectionPath(k *proto.Kind, namespace string) string {
	base := "/api/v1"
	if k.GVK.Group != "" {
		base = "/apis/" + k.GVK.Group + "/" + k.GVK.Version
	}
	if k.Namespaced && namespace != "" {
		base += "/namespaces/" + namespace
	}
	return base + "/" + k.Resource
}

func objectPath(k *proto.Kind, namespace, name string) string {
	return collectionPath(k, namespace) + "/" + name
}

func mustJSON(t testing.TB, v interface{}) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func kindFor(t testing.TB, group, resource string) *proto.Kind {
	t.Helper()
	k, ok := proto.KindForResource(group, resource)
	if !ok {
		t.Fatalf("no kind %s/%s", group, resource)
	}
	return k
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func contains(t testing.TB, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%q does not contain %q", got, want)
	}
}
