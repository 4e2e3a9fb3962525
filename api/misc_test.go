package api_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/api/apitest"
	"github.com/skiffhq/skiff/proto"
)

func TestReadAtResourceVersion(t *testing.T) {
	s := apitest.New(t, func(c *api.Config) { c.ConsistentReadTimeout = 100 * time.Millisecond })
	future := strconv.FormatUint(s.Store.AppliedIndex()+1, 10)
	st := call{method: "GET", path: "/api/v1/namespaces?resourceVersion=999999"}.do(t, s).want(t, http.StatusGatewayTimeout).status(t)
	if st.Details == nil || len(st.Details.Causes) != 1 || st.Details.Causes[0].Type != metav1.CauseTypeResourceVersionTooLarge {
		t.Fatalf("status %+v", st)
	}
	call{method: "GET", path: "/api/v1/namespaces/default?resourceVersion=x"}.do(t, s).want(t, http.StatusBadRequest)

	// A read at the next resourceVersion waits for the write that makes it.
	done := make(chan response, 1)
	go func() {
		done <- call{method: "GET", path: "/api/v1/namespaces?resourceVersion=" + future}.do(t, s)
	}()
	s.CreateNamespace(t, "later")
	select {
	case r := <-done:
		r.want(t, http.StatusOK)
		if !strings.Contains(string(r.body), `"later"`) {
			t.Fatalf("list at %s misses the namespace created at it", future)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read at a future resourceVersion never returned")
	}
}

func TestGenerateNameAndDryRun(t *testing.T) {
	s := apitest.New(t)
	cms := "/api/v1/namespaces/default/configmaps"
	var cm corev1.ConfigMap
	call{method: "POST", path: cms, body: `{"metadata":{"generateName":"web-"}}`}.do(t, s).want(t, http.StatusCreated).into(t, &cm)
	if !strings.HasPrefix(cm.Name, "web-") || len(cm.Name) != len("web-")+5 {
		t.Fatalf("generated name %q", cm.Name)
	}
	var dry corev1.ConfigMap
	call{method: "POST", path: cms + "?dryRun=All", body: `{"metadata":{"name":"dry"}}`}.do(t, s).want(t, http.StatusCreated).into(t, &dry)
	if dry.Name != "dry" || dry.UID == "" || dry.ResourceVersion != "" {
		t.Fatalf("dry-run create answered %+v", dry.ObjectMeta)
	}
	call{method: "GET", path: cms + "/dry"}.do(t, s).want(t, http.StatusNotFound)
	call{method: "PUT", path: cms + "/web-x?dryRun=All", body: `{"metadata":{"name":"web-x"}}`}.do(t, s).want(t, http.StatusNotFound)
}

func TestTableIncludeObject(t *testing.T) {
	s := apitest.New(t)
	accept := "application/json;as=Table;v=v1;g=meta.k8s.io"
	tests := []struct {
		include string
		want    string
	}{
		{"", `"kind":"PartialObjectMetadata"`},
		{"Object", `"kind":"Namespace"`},
		{"None", ""},
	}
	for _, tt := range tests {
		t.Run(tt.include, func(t *testing.T) {
			var table metav1.Table
			call{method: "GET", path: "/api/v1/namespaces/default?includeObject=" + tt.include, accept: accept}.do(t, s).want(t, http.StatusOK).into(t, &table)
			got := string(table.Rows[0].Object.Raw)
			if (tt.want == "" && got != "") || !strings.Contains(got, tt.want) {
				t.Fatalf("row object %s, want %s", got, tt.want)
			}
			if table.ResourceVersion == "" {
				t.Fatal("table has no resourceVersion")
			}
		})
	}
}

func TestProtobufBodies(t *testing.T) {
	s := apitest.New(t)
	secret := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: metav1.ObjectMeta{Name: "s"}}
	data, err := runtime.Encode(proto.Protobuf, secret)
	if err != nil {
		t.Fatal(err)
	}
	st := call{method: "POST", path: "/api/v1/namespaces/default/configmaps", ctype: proto.ContentTypeProtobuf, body: string(data)}.do(t, s).want(t, http.StatusBadRequest).status(t)
	if !strings.Contains(st.Message, "Secret") {
		t.Fatalf("message %q", st.Message)
	}
	call{method: "POST", path: "/api/v1/namespaces/default/configmaps", ctype: proto.ContentTypeProtobuf, body: "garbage"}.do(t, s).want(t, http.StatusBadRequest)
	r := call{method: "POST", path: "/api/v1/namespaces/default/secrets", ctype: proto.ContentTypeProtobuf, accept: proto.ContentTypeProtobuf, body: string(data)}.do(t, s).want(t, http.StatusCreated)
	if ct := r.header.Get("Content-Type"); ct != proto.ContentTypeProtobuf {
		t.Fatalf("content type %q", ct)
	}
	got, _, err := proto.Protobuf.Decode(r.body, nil, nil)
	if err != nil || got.(*corev1.Secret).Type != corev1.SecretTypeOpaque {
		t.Fatalf("decoded %v %v", got, err)
	}
	if _, err := s.Client.CoreV1().Secrets("default").Get(context.Background(), "s", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestSecretStringData(t *testing.T) {
	s := apitest.New(t)
	path := "/api/v1/namespaces/default/secrets"
	var sec corev1.Secret
	call{method: "POST", path: path, body: `{"metadata":{"name":"s"},"data":{"a":"YQ=="},"stringData":{"b":"bee","a":"override"}}`}.do(t, s).want(t, http.StatusCreated).into(t, &sec)
	if string(sec.Data["a"]) != "override" || string(sec.Data["b"]) != "bee" || len(sec.StringData) != 0 || sec.Type != corev1.SecretTypeOpaque {
		t.Fatalf("created secret: data %q stringData %q type %q", sec.Data, sec.StringData, sec.Type)
	}
	var patched corev1.Secret
	call{method: "PATCH", path: path + "/s", ctype: "application/merge-patch+json", body: `{"stringData":{"c":"sea"}}`}.do(t, s).want(t, http.StatusOK).into(t, &patched)
	if string(patched.Data["c"]) != "sea" || len(patched.Data) != 3 || len(patched.StringData) != 0 {
		t.Fatalf("patched secret: data %q stringData %q", patched.Data, patched.StringData)
	}
}
