package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// mapConfigSource serves ConfigMaps and Secrets from maps.
type mapConfigSource struct {
	cms     map[string]map[string]string
	secrets map[string]map[string][]byte
}

func (m mapConfigSource) ConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	d, ok := m.cms[name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
	}
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: d}, nil
}

func (m mapConfigSource) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	d, ok := m.secrets[name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: d}, nil
}

func cmKey(name, key string, optional bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: ptr.To(optional)}}
}

func secretKey(name, key string, optional bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: ptr.To(optional)}}
}

func TestContainerEnvFromConfigMapsAndSecrets(t *testing.T) {
	src := mapConfigSource{
		cms:     map[string]map[string]string{"app": {"MODE": "prod", "PORT": "8080", "bad-name": "x", "1X": "y"}},
		secrets: map[string]map[string][]byte{"db": {"password": []byte("s3cret")}},
	}
	tests := []struct {
		name    string
		envFrom []corev1.EnvFromSource
		env     []corev1.EnvVar
		want    string // NAME=value pairs in order
		wantErr string
	}{
		{
			name:    "envFrom without a prefix skips keys that are not variable names",
			envFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
			want:    "MODE=prod PORT=8080 bad-name=x",
		},
		{
			name:    "envFrom with a prefix, env overrides and expands",
			envFrom: []corev1.EnvFromSource{{Prefix: "APP_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
			env:     []corev1.EnvVar{{Name: "APP_PORT", Value: "9090"}, {Name: "URL", Value: "http://x:$(APP_PORT)/$(APP_MODE)"}},
			want:    "APP_1X=y APP_MODE=prod APP_PORT=9090 APP_bad-name=x URL=http://x:9090/prod",
		},
		{
			name: "secretKeyRef and configMapKeyRef",
			env:  []corev1.EnvVar{{Name: "PW", ValueFrom: secretKey("db", "password", false)}, {Name: "M", ValueFrom: cmKey("app", "MODE", false)}},
			want: "PW=s3cret M=prod",
		},
		{
			name:    "envFrom a Secret",
			envFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}},
			want:    "password=s3cret",
		},
		{
			name: "optional references that do not resolve are left out",
			envFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: ptr.To(true)}}},
			env:  []corev1.EnvVar{{Name: "A", ValueFrom: cmKey("nope", "k", true)}, {Name: "B", ValueFrom: secretKey("db", "nokey", true)}, {Name: "C", Value: "c"}},
			want: "C=c",
		},
		{name: "missing ConfigMap", env: []corev1.EnvVar{{Name: "A", ValueFrom: cmKey("nope", "k", false)}}, wantErr: `configmap "nope" not found`},
		{name: "missing key", env: []corev1.EnvVar{{Name: "A", ValueFrom: cmKey("app", "nokey", false)}}, wantErr: "couldn't find key nokey in ConfigMap default/app"},
		{name: "missing Secret", envFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}}}}, wantErr: `secret "gone" not found`},
		{name: "missing Secret key", env: []corev1.EnvVar{{Name: "A", ValueFrom: secretKey("db", "user", false)}}, wantErr: "couldn't find key user in Secret default/db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}}
			c := &corev1.Container{Name: "c", EnvFrom: tc.envFrom, Env: tc.env}
			env, err := containerEnv(context.Background(), pod, c, podEnv{}, src)
			if tc.wantErr != "" {
				if !errors.Is(err, errConfig) || !strings.Contains(fmt.Sprint(err), tc.wantErr) {
					t.Fatalf("err = %v, want a config error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range env {
				got = append(got, e.Name+"="+e.Value)
			}
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("env = %q, want %q", strings.Join(got, " "), tc.want)
			}
		})
	}
}

// TestAgentConfigErrorRetries: a pod whose ConfigMap is missing waits with
// CreateContainerConfigError and starts once the ConfigMap exists.
func TestAgentConfigErrorRetries(t *testing.T) {
	h := newHarness(t, nil)
	h.start(nil)
	pod := simplePod("cfg", corev1.RestartPolicyAlways, "a")
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "M", ValueFrom: cmKey("later", "mode", false)}}
	h.createPod(pod)
	h.waitPod("cfg", 10*time.Second, "CreateContainerConfigError", func(p *corev1.Pod) bool {
		cs, ok := containerState(p, "a")
		return ok && cs.State.Waiting != nil && cs.State.Waiting.Reason == reasonCreateContainerConf &&
			strings.Contains(cs.State.Waiting.Message, `configmap "later" not found`)
	})
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "later"}, Data: map[string]string{"mode": "on"}}
	if _, err := h.api.Client.CoreV1().ConfigMaps("default").Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitPod("cfg", 10*time.Second, "running once the ConfigMap exists", func(p *corev1.Pod) bool {
		return p != nil && p.Status.Phase == corev1.PodRunning
	})
}
