package proto

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
)

// Scheme knows every served type plus the meta types (Status, Table,
// WatchEvent, ListOptions...). It is built once and only read afterwards.
var Scheme = newScheme()

// Codecs builds encoders and decoders over Scheme.
var Codecs = serializer.NewCodecFactory(Scheme)

// ParameterCodec decodes query parameters into option structs.
var ParameterCodec = runtime.NewParameterCodec(Scheme)

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, autoscalingv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	s.AddUnversionedTypes(metav1.SchemeGroupVersion, &metav1.Table{}, &metav1.TableOptions{},
		&metav1.PartialObjectMetadata{}, &metav1.PartialObjectMetadataList{})
	return s
}

// StrictJSON decodes JSON (and YAML, which is a superset) and reports
// unknown and duplicate fields as strict decoding errors.
var StrictJSON = json.NewSerializerWithOptions(json.DefaultMetaFactory, Scheme, Scheme,
	json.SerializerOptions{Yaml: true, Strict: true})

// LaxJSON decodes like StrictJSON but ignores unknown fields.
var LaxJSON = json.NewSerializerWithOptions(json.DefaultMetaFactory, Scheme, Scheme,
	json.SerializerOptions{Yaml: true})

// ContentTypeProtobuf is the Kubernetes protobuf media type.
const ContentTypeProtobuf = "application/vnd.kubernetes.protobuf"

// Protobuf encodes and decodes objects in the Kubernetes protobuf envelope
// (the "k8s\x00" magic followed by runtime.Unknown).
var Protobuf = protobuf.NewSerializer(Scheme, Scheme)

// RawProtobuf encodes watch event envelopes in protobuf watch streams.
var RawProtobuf = protobuf.NewRawSerializer(Scheme, Scheme)
