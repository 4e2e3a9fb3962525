package api

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiffhq/skiff/proto"
)

// SecretCipher seals Secret values before they are proposed, so that no
// Raft log entry, BoltDB page or snapshot holds them in clear, and opens
// them again on every way out of the API. Implementations must be safe for
// concurrent use.
type SecretCipher interface {
	Seal(plain []byte) ([]byte, error)
	Open(sealed []byte) ([]byte, error)
}

// sealedPrefix marks a sealed value; values without it are plaintext
// (written before encryption was turned on) and are read as they are.
var sealedPrefix = []byte("\x00skiff:aesgcm:v1\x00")

// ErrSealed means a sealed value could not be opened (wrong cluster key).
var ErrSealed = errors.New("api: cannot open a sealed secret value")

type aesGCM struct{ aead cipher.AEAD }

// NewAESGCM returns a SecretCipher using AES-256-GCM with a random nonce
// per value.
func NewAESGCM(key []byte) (SecretCipher, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("api: the cluster key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &aesGCM{aead: aead}, nil
}

func (c *aesGCM) Seal(plain []byte) ([]byte, error) {
	out := make([]byte, len(sealedPrefix), len(sealedPrefix)+c.aead.NonceSize()+len(plain)+c.aead.Overhead())
	copy(out, sealedPrefix)
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return c.aead.Seal(out, nonce, plain, sealedPrefix), nil
}

func (c *aesGCM) Open(sealed []byte) ([]byte, error) {
	if !bytes.HasPrefix(sealed, sealedPrefix) {
		return sealed, nil
	}
	rest := sealed[len(sealedPrefix):]
	if len(rest) < c.aead.NonceSize() {
		return nil, ErrSealed
	}
	plain, err := c.aead.Open(nil, rest[:c.aead.NonceSize()], rest[c.aead.NonceSize():], sealedPrefix)
	if err != nil {
		return nil, ErrSealed
	}
	return plain, nil
}

// lastApplied is kubectl's annotation holding the whole applied manifest,
// data included: it is sealed like the data (base64, as annotations are
// strings).
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

const sealedAnnotationPrefix = "skiff-sealed:"

// secretMapper turns one value (seal or open).
type secretMapper func(SecretCipher, []byte) ([]byte, error)

// mapSecretData returns a copy of a Secret with every data value and the
// last-applied annotation passed through fn, or obj itself when it is not
// a Secret or there is no cipher.
func mapSecretData(obj proto.Object, c SecretCipher, fn secretMapper, sealing bool) (proto.Object, error) {
	sec, ok := obj.(*corev1.Secret)
	if !ok || c == nil {
		return obj, nil
	}
	note, annotated := sec.Annotations[lastApplied]
	if len(sec.Data) == 0 && !annotated {
		return obj, nil
	}
	out := sec.DeepCopy()
	for k, v := range out.Data {
		nv, err := fn(c, v)
		if err != nil {
			return nil, apierrors.NewInternalError(fmt.Errorf("secret %s/%s key %q: %w", sec.Namespace, sec.Name, k, err))
		}
		out.Data[k] = nv
	}
	if annotated {
		nv, err := mapAnnotation(c, note, sealing)
		if err != nil {
			return nil, apierrors.NewInternalError(fmt.Errorf("secret %s/%s annotation %s: %w", sec.Namespace, sec.Name, lastApplied, err))
		}
		out.Annotations[lastApplied] = nv
	}
	return out, nil
}

func mapAnnotation(c SecretCipher, v string, sealing bool) (string, error) {
	if sealing {
		sealed, err := c.Seal([]byte(v))
		return sealedAnnotationPrefix + base64.StdEncoding.EncodeToString(sealed), err
	}
	if !strings.HasPrefix(v, sealedAnnotationPrefix) {
		return v, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v, sealedAnnotationPrefix))
	if err != nil {
		return "", ErrSealed
	}
	plain, err := c.Open(raw)
	return string(plain), err
}

// conceal seals a Secret's values on the way into the store.
func (s *Server) conceal(obj proto.Object) (proto.Object, error) {
	return mapSecretData(obj, s.cfg.SecretCipher, SecretCipher.Seal, true)
}

// reveal opens a Secret's values on the way out of the store.
func (s *Server) reveal(obj proto.Object) (proto.Object, error) {
	return mapSecretData(obj, s.cfg.SecretCipher, SecretCipher.Open, false)
}

// load reads one object from the store, opened.
func (s *Server) load(kind *proto.Kind, namespace, name string) (proto.Object, bool, error) {
	obj, ok := s.store.Get(kind, namespace, name)
	if !ok {
		return nil, false, nil
	}
	obj, err := s.reveal(obj)
	return obj, err == nil, err
}

// revealAll opens every object of a list.
func (s *Server) revealAll(objs []proto.Object) ([]proto.Object, error) {
	if s.cfg.SecretCipher == nil || len(objs) == 0 {
		return objs, nil
	}
	if _, ok := objs[0].(*corev1.Secret); !ok {
		return objs, nil
	}
	out := make([]proto.Object, len(objs))
	for i, o := range objs {
		var err error
		if out[i], err = s.reveal(o); err != nil {
			return nil, err
		}
	}
	return out, nil
}
