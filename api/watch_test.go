package api_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffhq/skiff/api/apitest"
	"github.com/skiffhq/skiff/fsm"
	"github.com/skiffhq/skiff/proto"
)

func configMap(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "sample"}}, Data: map[string]string{"k": "v"}}
}

// nextWatchEvent reads one event from a client-go watch within a deadline.
func nextWatchEvent(t testing.TB, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no watch event within 5s")
	}
	return watch.Event{}
}

func TestWatchTypedOrderAndResume(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	cms := s.Client.CoreV1().ConfigMaps("default")
	list, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	cm, _ := cms.Create(ctx, configMap("a"), metav1.CreateOptions{})
	firstRV := cm.ResourceVersion
	cm.Data["k"] = "v2"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var rvs []int
	for _, want := range []watch.EventType{watch.Added, watch.Modified, watch.Deleted} {
		ev := nextWatchEvent(t, w)
		got := ev.Object.(*corev1.ConfigMap)
		if ev.Type != want || got.Name != "a" {
			t.Fatalf("event %s %s, want %s a", ev.Type, got.Name, want)
		}
		n, _ := strconv.Atoi(got.ResourceVersion)
		rvs = append(rvs, n)
	}
	if !(rvs[0] < rvs[1] && rvs[1] < rvs[2]) {
		t.Fatalf("resourceVersions not increasing: %v", rvs)
	}

	resumed, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: firstRV})
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Stop()
	for _, want := range []watch.EventType{watch.Modified, watch.Deleted} {
		if ev := nextWatchEvent(t, resumed); ev.Type != want {
			t.Fatalf("resumed watch: %s, want %s", ev.Type, want)
		}
	}
}

// streamEvent is a JSON watch event with the object left raw.
type streamEvent struct {
	Type   watch.EventType `json:"type"`
	Object json.RawMessage `json:"object"`
}

// openStream starts a raw watch and returns its response and a reader of
// JSON events; the stream closes when the test ends.
func openStream(t testing.TB, s *apitest.Server, path, accept string) (*http.Response, func() streamEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.HTTP.URL+path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := s.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	return resp, func() streamEvent {
		t.Helper()
		var ev streamEvent
		done := make(chan error, 1)
		go func() { done <- dec.Decode(&ev) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("reading watch stream: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no watch event within 5s")
		}
		return ev
	}
}

func TestWatchGoneWhenCompacted(t *testing.T) {
	s := apitest.New(t, apitest.WithStoreConfig(func(c *fsm.Config) { c.WatchHistory = 16 }))
	ctx := context.Background()
	cms := s.Client.CoreV1().ConfigMaps("default")
	cm, _ := cms.Create(ctx, configMap("a"), metav1.CreateOptions{})
	first := cm.ResourceVersion
	for i := 0; i < 20; i++ {
		cm.Data["k"] = strconv.Itoa(i)
		cm.ResourceVersion = ""
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: first})
	if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("watch from a compacted resourceVersion: %v, want 410", err)
	}
	st := call{method: "GET", path: "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=" + first}.do(t, s).want(t, http.StatusGone).status(t)
	contains(t, st.Message, "too old resource version: "+first)
	call{method: "GET", path: "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=abc"}.do(t, s).want(t, http.StatusBadRequest)
}

func TestWatchList(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if _, err := s.Client.CoreV1().ConfigMaps("default").Create(ctx, configMap(n), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	_, next := openStream(t, s, "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true", "")
	for _, name := range []string{"a", "b"} {
		ev := next()
		var cm corev1.ConfigMap
		json.Unmarshal(ev.Object, &cm)
		if ev.Type != watch.Added || cm.Name != name {
			t.Fatalf("initial event %s %s, want ADDED %s", ev.Type, cm.Name, name)
		}
	}
	ev := next()
	var bm corev1.ConfigMap
	json.Unmarshal(ev.Object, &bm)
	if ev.Type != watch.Bookmark || bm.Annotations[metav1.InitialEventsAnnotationKey] != "true" || bm.ResourceVersion == "" || bm.Kind != "ConfigMap" {
		t.Fatalf("bookmark: %s %s", ev.Type, ev.Object)
	}
	if _, err := s.Client.CoreV1().ConfigMaps("default").Create(ctx, configMap("c"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Type != watch.Added || !strings.Contains(string(ev.Object), `"name":"c"`) {
		t.Fatalf("after the bookmark: %s %s", ev.Type, ev.Object)
	}
}

// recorder remembers the query strings of the requests a client makes.
type recorder struct {
	mu      sync.Mutex
	queries []string
	next    http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.queries = append(r.queries, req.URL.RawQuery)
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *recorder) used(param string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.queries {
		if strings.Contains(q, param) {
			return true
		}
	}
	return false
}

func TestInformerSyncs(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c"} {
		if _, err := s.Client.CoreV1().ConfigMaps("default").Create(ctx, configMap(n), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{}
	cfg := rest.CopyConfig(s.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { rec.next = rt; return rec }
	client := kubernetes.NewForConfigOrDie(cfg)
	f := informers.NewSharedInformerFactory(client, 0)
	inf := f.Core().V1().ConfigMaps().Informer()
	stop := make(chan struct{})
	defer close(stop)
	f.Start(stop)
	syncCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	if n := len(inf.GetStore().List()); n != 3 {
		t.Fatalf("informer holds %d configmaps, want 3", n)
	}
	if !rec.used("sendInitialEvents=true") {
		t.Fatalf("informer did not use a watch-list stream: %v", rec.queries)
	}
	if err := s.Client.CoreV1().ConfigMaps("default").Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the informer to see the delete", func() bool { return len(inf.GetStore().List()) == 2 })
}

func TestWatchTable(t *testing.T) {
	s := apitest.New(t)
	resp, next := openStream(t, s, "/api/v1/namespaces/default/configmaps?watch=1", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	if _, err := s.Client.CoreV1().ConfigMaps("default").Create(context.Background(), configMap("a"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := next()
	var table metav1.Table
	if err := json.Unmarshal(ev.Object, &table); err != nil {
		t.Fatal(err)
	}
	if ev.Type != watch.Added || table.Kind != "Table" || len(table.Rows) != 1 || table.Rows[0].Cells[0] != "a" || table.ResourceVersion == "" {
		t.Fatalf("table event %s: %s", ev.Type, ev.Object)
	}
	if len(table.ColumnDefinitions) == 0 || table.ColumnDefinitions[0].Name != "Name" {
		t.Fatalf("columns %+v", table.ColumnDefinitions)
	}
}

func TestWatchOneObjectAndTimeout(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	cms := s.Client.CoreV1().ConfigMaps("default")
	_, next := openStream(t, s, "/api/v1/watch/namespaces/default/configmaps/b?timeoutSeconds=1", "")
	for _, n := range []string{"a", "b"} {
		if _, err := cms.Create(ctx, configMap(n), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if ev := next(); ev.Type != watch.Added || !strings.Contains(string(ev.Object), `"name":"b"`) {
		t.Fatalf("single-object watch: %s %s", ev.Type, ev.Object)
	}

	start := time.Now()
	w, err := cms.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=a", TimeoutSeconds: ptrInt64(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if ev := nextWatchEvent(t, w); ev.Type != watch.Added {
		t.Fatalf("first event %s", ev.Type)
	}
	select {
	case _, ok := <-w.ResultChan():
		if ok {
			t.Fatal("unexpected event")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch with timeoutSeconds=1 still open after 5s")
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("watch closed after %v, before its timeout", d)
	}
}

func ptrInt64(n int64) *int64 { return &n }

func TestWatchProtobufStream(t *testing.T) {
	s := apitest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.HTTP.URL+"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1", nil)
	req.Header.Set("Accept", "application/vnd.kubernetes.protobuf;stream=watch")
	resp, err := s.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.kubernetes.protobuf;stream=watch" {
		t.Fatalf("content type %q", ct)
	}
	if _, err := s.Client.CoreV1().ConfigMaps("default").Create(ctx, configMap("a"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(resp.Body, size[:]); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(resp.Body, frame); err != nil {
		t.Fatal(err)
	}
	var ev metav1.WatchEvent
	if err := ev.Unmarshal(frame); err != nil {
		t.Fatalf("frame is not a WatchEvent: %v", err)
	}
	obj, _, err := proto.Protobuf.Decode(ev.Object.Raw, nil, nil)
	if err != nil {
		t.Fatalf("event object: %v", err)
	}
	if cm, ok := obj.(*corev1.ConfigMap); ev.Type != string(watch.Added) || !ok || cm.Name != "a" {
		t.Fatalf("event %s %T", ev.Type, obj)
	}
}
