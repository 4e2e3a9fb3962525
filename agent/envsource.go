package agent

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

// configSource fetches the ConfigMaps and Secrets a container's environment
// refers to. A missing object is an error for which apierrors.IsNotFound
// holds. Pod workers call it concurrently.
type configSource interface {
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// apiConfigSource reads them from the API when a container is created, so a
// changed ConfigMap or Secret reaches the next container started (as with
// the kubelet, a running container keeps its environment). The node
// authorizer lets a node read only the Secrets its own pods refer to.
type apiConfigSource struct{ client kubernetes.Interface }

func (s apiConfigSource) ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	return s.client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (s apiConfigSource) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	return s.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
}

// memoSource remembers what src answered, so one sync reads each
// ConfigMap and Secret once however many containers, variables and volumes
// refer to it. It belongs to one pod worker's sync (not safe for
// concurrent use).
type memoSource struct {
	src     configSource
	cms     map[string]memoResult[*corev1.ConfigMap]
	secrets map[string]memoResult[*corev1.Secret]
}

type memoResult[T any] struct {
	obj T
	err error
}

func newMemoSource(src configSource) *memoSource {
	return &memoSource{src: src, cms: map[string]memoResult[*corev1.ConfigMap]{}, secrets: map[string]memoResult[*corev1.Secret]{}}
}

func (m *memoSource) ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	return memo(m.cms, namespace+"/"+name, func() (*corev1.ConfigMap, error) { return m.src.ConfigMap(ctx, namespace, name) })
}

func (m *memoSource) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	return memo(m.secrets, namespace+"/"+name, func() (*corev1.Secret, error) { return m.src.Secret(ctx, namespace, name) })
}

func memo[T any](cache map[string]memoResult[T], key string, get func() (T, error)) (T, error) {
	if r, ok := cache[key]; ok {
		return r.obj, r.err
	}
	obj, err := get()
	cache[key] = memoResult[T]{obj, err}
	return obj, err
}

// envBuilder collects a container's variables: later settings of a name
// replace earlier ones in place, as the kubelet's map does.
type envBuilder struct {
	out  []EnvVar
	vars map[string]string
	at   map[string]int
}

func newEnvBuilder() *envBuilder {
	return &envBuilder{vars: map[string]string{}, at: map[string]int{}}
}

func (b *envBuilder) set(name, value string) {
	b.vars[name] = value
	if i, ok := b.at[name]; ok {
		b.out[i].Value = value
		return
	}
	b.at[name] = len(b.out)
	b.out = append(b.out, EnvVar{Name: name, Value: value})
}

// configData reads the data of a ConfigMap (secret false; BinaryData too
// when withBinary) or of a Secret. found is false when an optional object
// does not exist; a missing required one is a config error.
func configData(ctx context.Context, src configSource, secret bool, namespace, name string, optional *bool, withBinary bool) (data map[string][]byte, found bool, err error) {
	what := "configmap"
	if secret {
		what = "secret"
		var s *corev1.Secret
		if s, err = src.Secret(ctx, namespace, name); err == nil {
			data = s.Data
		}
	} else {
		var cm *corev1.ConfigMap
		if cm, err = src.ConfigMap(ctx, namespace, name); err == nil {
			data = make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
			for k, v := range cm.BinaryData {
				if withBinary {
					data[k] = v
				}
			}
		}
	}
	switch {
	case err == nil:
		return data, true, nil
	case apierrors.IsNotFound(err) && isOptional(optional):
		return nil, false, nil
	}
	return nil, false, configErr(err, what, name)
}

// addEnvFrom adds every key of the ConfigMaps and Secrets of c.EnvFrom, in
// order, each with its prefix. Keys that are not valid variable names are
// skipped, as the kubelet does.
func addEnvFrom(ctx context.Context, pod *corev1.Pod, c *corev1.Container, src configSource, b *envBuilder) error {
	for _, from := range c.EnvFrom {
		var (
			data map[string][]byte
			err  error
		)
		switch {
		case from.ConfigMapRef != nil:
			data, _, err = configData(ctx, src, false, pod.Namespace, from.ConfigMapRef.Name, from.ConfigMapRef.Optional, false)
		case from.SecretRef != nil:
			data, _, err = configData(ctx, src, true, pod.Namespace, from.SecretRef.Name, from.SecretRef.Optional, false)
		}
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if name := from.Prefix + k; len(validation.IsEnvVarName(name)) == 0 {
				b.set(name, string(data[k]))
			}
		}
	}
	return nil
}

// keyRef resolves a configMapKeyRef or secretKeyRef; ok is false for an
// optional reference that does not resolve (the variable is left out).
func keyRef(ctx context.Context, pod *corev1.Pod, src configSource, from *corev1.EnvVarSource) (value string, ok bool, err error) {
	var (
		secret   bool
		kind     = "ConfigMap"
		name     string
		key      string
		optional *bool
	)
	switch {
	case from.ConfigMapKeyRef != nil:
		name, key, optional = from.ConfigMapKeyRef.Name, from.ConfigMapKeyRef.Key, from.ConfigMapKeyRef.Optional
	case from.SecretKeyRef != nil:
		secret, kind = true, "Secret"
		name, key, optional = from.SecretKeyRef.Name, from.SecretKeyRef.Key, from.SecretKeyRef.Optional
	default:
		return "", false, fmt.Errorf("%w: empty valueFrom", errConfig)
	}
	data, found, err := configData(ctx, src, secret, pod.Namespace, name, optional, false)
	if err != nil || !found {
		return "", false, err
	}
	v, found := data[key]
	if !found && !isOptional(optional) {
		return "", false, fmt.Errorf("%w: couldn't find key %s in %s %s/%s", errConfig, key, kind, pod.Namespace, name)
	}
	return string(v), found, nil
}

func isOptional(b *bool) bool { return b != nil && *b }

// configErr words a failed read like the kubelet: `configmap "x" not found`.
func configErr(err error, what, name string) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: %s %q not found", errConfig, what, name)
	}
	return fmt.Errorf("%w: reading %s %q: %w", errConfig, what, name, err)
}
