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

// addEnvFrom adds every key of the ConfigMaps and Secrets of c.EnvFrom, in
// order, each with its prefix. Keys that are not valid variable names are
// skipped, as the kubelet does.
func addEnvFrom(ctx context.Context, pod *corev1.Pod, c *corev1.Container, src configSource, b *envBuilder) error {
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := src.ConfigMap(ctx, pod.Namespace, from.ConfigMapRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && isOptional(from.ConfigMapRef.Optional) {
					continue
				}
				return configErr(err, "configmap", from.ConfigMapRef.Name)
			}
			data = cm.Data
		case from.SecretRef != nil:
			s, err := src.Secret(ctx, pod.Namespace, from.SecretRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && isOptional(from.SecretRef.Optional) {
					continue
				}
				return configErr(err, "secret", from.SecretRef.Name)
			}
			data = make(map[string]string, len(s.Data))
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if name := from.Prefix + k; len(validation.IsEnvVarName(name)) == 0 {
				b.set(name, data[k])
			}
		}
	}
	return nil
}

// keyRef resolves a configMapKeyRef or secretKeyRef; ok is false for an
// optional reference that does not resolve (the variable is left out).
func keyRef(ctx context.Context, pod *corev1.Pod, src configSource, from *corev1.EnvVarSource) (value string, ok bool, err error) {
	switch {
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := src.ConfigMap(ctx, pod.Namespace, ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && isOptional(ref.Optional) {
				return "", false, nil
			}
			return "", false, configErr(err, "configmap", ref.Name)
		}
		v, found := cm.Data[ref.Key]
		if !found && !isOptional(ref.Optional) {
			return "", false, fmt.Errorf("%w: couldn't find key %s in ConfigMap %s/%s", errConfig, ref.Key, pod.Namespace, ref.Name)
		}
		return v, found, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		s, err := src.Secret(ctx, pod.Namespace, ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && isOptional(ref.Optional) {
				return "", false, nil
			}
			return "", false, configErr(err, "secret", ref.Name)
		}
		v, found := s.Data[ref.Key]
		if !found && !isOptional(ref.Optional) {
			return "", false, fmt.Errorf("%w: couldn't find key %s in Secret %s/%s", errConfig, ref.Key, pod.Namespace, ref.Name)
		}
		return string(v), found, nil
	}
	return "", false, fmt.Errorf("%w: empty valueFrom", errConfig)
}

func isOptional(b *bool) bool { return b != nil && *b }

// configErr words a failed read like the kubelet: `configmap "x" not found`.
func configErr(err error, what, name string) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: %s %q not found", errConfig, what, name)
	}
	return fmt.Errorf("%w: reading %s %q: %w", errConfig, what, name, err)
}
