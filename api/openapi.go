package api

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	gproto "google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/handler3"

	"github.com/skiffhq/skiff/proto"
)

// Media types of the protobuf forms of the OpenAPI documents.
const (
	openAPIV2Protobuf = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
	openAPIV3Protobuf = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
)

// openAPIDoc is one rendered document in its JSON and protobuf forms.
type openAPIDoc struct {
	json, protobuf []byte
	etag           string
}

// openAPIDocs are built once, on first use: they depend only on the served
// kinds and the version.
type openAPIDocs struct {
	once      sync.Once
	err       error
	v2        openAPIDoc
	v3        map[string]openAPIDoc // "api/v1", "apis/apps/v1"
	discovery []byte
}

func gvPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.String()
}

func (d *openAPIDocs) build(version string) error {
	d.once.Do(func() { d.err = d.render(version) })
	return d.err
}

func (d *openAPIDocs) render(version string) error {
	info := obj{"title": "Kubernetes", "version": version}
	d.v3 = map[string]openAPIDoc{}
	disco := handler3.OpenAPIV3Discovery{Paths: map[string]handler3.OpenAPIV3DiscoveryGroupVersion{}}
	v2 := &docBuilder{g: newSchemaGen(false), paths: obj{}}
	for _, gv := range proto.GroupVersions() {
		v3 := &docBuilder{g: newSchemaGen(true), paths: obj{}}
		for _, k := range proto.KindsIn(gv) {
			v3.addKind(k)
			v2.addKind(k)
		}
		doc, err := encodeDoc(obj{"openapi": "3.0.0", "info": info, "paths": v3.paths,
			"components": obj{"schemas": v3.g.defs}}, handler3.ToV3ProtoBinary)
		if err != nil {
			return fmt.Errorf("openapi v3 %s: %w", gv, err)
		}
		d.v3[gvPath(gv)] = doc
		disco.Paths[gvPath(gv)] = handler3.OpenAPIV3DiscoveryGroupVersion{ServerRelativeURL: "/openapi/v3/" + gvPath(gv) + "?hash=" + doc.etag}
	}
	var err error
	d.v2, err = encodeDoc(obj{"swagger": "2.0", "info": info, "paths": v2.paths, "definitions": v2.g.defs}, v2Protobuf)
	if err != nil {
		return fmt.Errorf("openapi v2: %w", err)
	}
	d.discovery, err = json.Marshal(disco)
	return err
}

func encodeDoc(doc obj, toProtobuf func([]byte) ([]byte, error)) (openAPIDoc, error) {
	data, err := json.Marshal(doc)
	if err != nil {
		return openAPIDoc{}, err
	}
	pb, err := toProtobuf(data)
	if err != nil {
		return openAPIDoc{}, err
	}
	sum := sha512.Sum512(data)
	return openAPIDoc{json: data, protobuf: pb, etag: strings.ToUpper(hex.EncodeToString(sum[:16]))}, nil
}

func v2Protobuf(data []byte) ([]byte, error) {
	doc, err := openapi_v2.ParseDocument(data)
	if err != nil {
		return nil, err
	}
	return gproto.Marshal(doc)
}

func (s *Server) openAPIV2(w http.ResponseWriter, r *http.Request) {
	if err := s.openapi.build(s.cfg.Version.GitVersion); err != nil {
		writeError(w, err)
		return
	}
	serveDoc(w, r, s.openapi.v2, openAPIV2Protobuf)
}

func (s *Server) openAPIV3Discovery(w http.ResponseWriter, r *http.Request) {
	if err := s.openapi.build(s.cfg.Version.GitVersion); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.openapi.discovery)
}

func (s *Server) openAPIV3(w http.ResponseWriter, r *http.Request) {
	if err := s.openapi.build(s.cfg.Version.GitVersion); err != nil {
		writeError(w, err)
		return
	}
	doc, ok := s.openapi.v3[strings.TrimPrefix(r.URL.Path, "/openapi/v3/")]
	if !ok {
		writeError(w, notFoundPath(r.URL.Path))
		return
	}
	serveDoc(w, r, doc, openAPIV3Protobuf)
}

// serveDoc writes a document as protobuf when the client asks for it and
// as JSON otherwise, with an ETag so clients can cache it.
func serveDoc(w http.ResponseWriter, r *http.Request, doc openAPIDoc, protobufType string) {
	etag := `"` + doc.etag + `"`
	w.Header().Set("Etag", etag)
	w.Header().Set("Vary", "Accept")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), protobufType) {
		// "@" is not valid in a media type, so the answer names the type
		// with a dot, as the Kubernetes API server does.
		w.Header().Set("Content-Type", strings.Replace(protobufType, "@", ".", 1))
		w.Write(doc.protobuf)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(doc.json)
}
