package api

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffhq/skiff/fsm"
	"github.com/skiffhq/skiff/proto"
)

// initialEventsEnd is the annotation on the bookmark that closes the
// initial events of a watch-list stream.
const initialEventsEnd = "k8s.io/initial-events-end"

type watchEvent struct {
	Type   watch.EventType `json:"type"`
	Object runtime.Object  `json:"object"`
}

func (s *Server) watch(w http.ResponseWriter, r *http.Request, req *request) {
	q := r.URL.Query()
	opts, streamList, err := s.watchOptions(r.Context(), req, q.Get("labelSelector"), q.Get("fieldSelector"), q.Get("resourceVersion"), q.Get("sendInitialEvents") == "true")
	if err != nil {
		writeError(w, err)
		return
	}
	watcher, err := s.store.Watch(req.kind, opts)
	if errors.Is(err, fsm.ErrGone) {
		writeError(w, gone(fmt.Sprintf("too old resource version: %s (%d)", q.Get("resourceVersion"), s.store.AppliedIndex())))
		return
	} else if err != nil {
		writeError(w, apierrors.NewInternalError(err))
		return
	}
	defer watcher.Stop()

	timeout := s.cfg.WatchTimeout
	if ts, err := strconv.Atoi(q.Get("timeoutSeconds")); err == nil && ts > 0 && time.Duration(ts)*time.Second < timeout {
		timeout = time.Duration(ts) * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()

	table, asTable := tableRequested(r)
	enc := newEventEncoder(w, r, asTable)
	defer enc.rc.SetWriteDeadline(time.Time{}) // the connection may serve other requests
	w.WriteHeader(http.StatusOK)
	enc.flush()
	for {
		ev, err := watcher.Next(ctx)
		if err != nil {
			if errors.Is(err, fsm.ErrWatcherTooSlow) || errors.Is(err, fsm.ErrGone) {
				st := statusOf(gone(err.Error()))
				st.Kind, st.APIVersion = "Status", "v1"
				enc.encode(watch.Error, st)
				enc.flush()
			}
			return
		}
		if err := s.sendEvent(enc, req.kind, ev, streamList, table, asTable); err != nil {
			s.log.Debug("api: watch ended", "err", err)
			return
		}
		// Flush once the queue is drained, whatever the last event was,
		// so a burst goes out in one write and nothing stays buffered.
		if watcher.Pending() == 0 {
			enc.flush()
		}
	}
}

// sendEvent encodes one store event; bookmarks are only sent to watch-list
// streams, where one ends the initial events.
func (s *Server) sendEvent(enc *eventEncoder, kind *proto.Kind, ev fsm.Event, streamList bool, table tableRequest, asTable bool) error {
	if ev.Type == watch.Bookmark {
		if !streamList {
			return nil
		}
		ev.Object = bookmark(kind, ev.Index)
	}
	out, err := s.eventObject(kind, ev, table, asTable)
	if err != nil {
		return fmt.Errorf("encoding watch event: %w", err)
	}
	return enc.encode(ev.Type, out)
}

// eventEncoder writes watch events as newline-separated JSON or as
// length-delimited protobuf frames, as client-go expects for each.
type eventEncoder struct {
	bw      *bufio.Writer
	flusher http.Flusher
	rc      *http.ResponseController
	json    *json.Encoder
	proto   bool
}

// watchWriteTimeout bounds how long one write to a watcher may block: a
// client that stays connected but stops reading is cut off.
const watchWriteTimeout = 30 * time.Second

func newEventEncoder(w http.ResponseWriter, r *http.Request, asTable bool) *eventEncoder {
	e := &eventEncoder{bw: bufio.NewWriter(w), rc: http.NewResponseController(w)}
	e.flusher, _ = w.(http.Flusher)
	w.Header().Set("Cache-Control", "no-cache, private")
	if !asTable && negotiate(r) == encProtobuf {
		e.proto = true
		w.Header().Set("Content-Type", proto.ContentTypeProtobuf+";stream=watch")
		return e
	}
	e.json = json.NewEncoder(e.bw)
	w.Header().Set("Content-Type", "application/json")
	return e
}

func (e *eventEncoder) encode(typ watch.EventType, obj runtime.Object) error {
	e.rc.SetWriteDeadline(time.Now().Add(watchWriteTimeout)) // a full buffer writes through
	if !e.proto {
		return e.json.Encode(watchEvent{Type: typ, Object: obj})
	}
	inner, err := runtime.Encode(proto.Protobuf, obj)
	if err != nil {
		return err
	}
	ev := &metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: inner}}
	data, err := ev.Marshal()
	if err != nil {
		return err
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	e.bw.Write(n[:])
	_, err = e.bw.Write(data)
	return err
}

func (e *eventEncoder) flush() {
	e.rc.SetWriteDeadline(time.Now().Add(watchWriteTimeout)) // best effort: not every writer supports it
	e.bw.Flush()
	if e.flusher != nil {
		e.flusher.Flush()
	}
}

// watchOptions translates the watch query into store options. streamList is
// true for a watch-list request (sendInitialEvents=true), whose initial
// events end with an annotated bookmark.
func (s *Server) watchOptions(ctx context.Context, req *request, labelSel, fieldSel, rv string, sendInitial bool) (fsm.WatchOptions, bool, error) {
	pred, err := selectorPredicate(req.kind, labelSel, fieldSel)
	if err != nil {
		return fsm.WatchOptions{}, false, err
	}
	if req.name != "" {
		name, inner := req.name, pred
		pred = func(o proto.Object) bool {
			m, err := meta.Accessor(o)
			return err == nil && m.GetName() == name && (inner == nil || inner(o))
		}
	}
	opts := fsm.WatchOptions{Namespace: req.namespace, Predicate: pred}
	switch {
	case sendInitial:
		opts.SendInitialEvents = true
		if err := s.waitForResourceVersion(ctx, rv); err != nil {
			return opts, false, err
		}
	case rv == "" || rv == "0":
		// Kubernetes: start from the current state, sent as ADDED events.
		opts.SendInitialEvents = true
	default:
		n, err := strconv.ParseUint(rv, 10, 64)
		if err != nil {
			return opts, false, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q", rv))
		}
		if err := s.waitForResourceVersion(ctx, rv); err != nil {
			return opts, false, err
		}
		opts.ResourceVersion = n
	}
	return opts, sendInitial, nil
}

func bookmark(kind *proto.Kind, index uint64) proto.Object {
	obj := kind.New()
	obj.GetObjectKind().SetGroupVersionKind(kind.GVK)
	m, _ := meta.Accessor(obj)
	m.SetResourceVersion(strconv.FormatUint(index, 10))
	m.SetAnnotations(map[string]string{initialEventsEnd: "true"})
	return obj
}

func (s *Server) eventObject(kind *proto.Kind, ev fsm.Event, table tableRequest, asTable bool) (runtime.Object, error) {
	if ev.Type != watch.Bookmark {
		obj, err := s.reveal(ev.Object)
		if err != nil {
			return nil, err
		}
		ev.Object = obj
	}
	if !asTable || ev.Type == watch.Bookmark {
		return ev.Object, nil
	}
	t, err := toTable(kind, []proto.Object{ev.Object}, table.includeObject, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	if m, err := meta.Accessor(ev.Object); err == nil {
		t.ResourceVersion = m.GetResourceVersion()
	}
	return t, nil
}
