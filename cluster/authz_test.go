package cluster

import (
	"context"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/api"
	"github.com/skiffhq/skiff/api/apitest"
)

// TestNodeAuthorizer checks the node rules on a store with pods bound to
// two nodes: a node reads only the Secrets its own pods refer to, and its
// pod writes carry the pod's UID.
func TestNodeAuthorizer(t *testing.T) {
	s := apitest.New(t)
	ctx := context.Background()
	pods := []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "env", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "n1",
			Containers: []corev1.Container{{Name: "c", Image: "i", Env: []corev1.EnvVar{{Name: "P", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "by-env"}, Key: "k"}}}}}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "from", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "n1",
			InitContainers:   []corev1.Container{{Name: "i", Image: "i", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "by-envfrom"}}}}}},
			Containers:       []corev1.Container{{Name: "c", Image: "i"}},
			Volumes:          []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "by-volume"}}}},
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "by-pull"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere", Namespace: "default"}, Spec: corev1.PodSpec{NodeName: "n2",
			Containers: []corev1.Container{{Name: "c", Image: "i", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "on-n2"}}}}}}}},
	}
	uids := map[string]string{}
	for _, p := range pods {
		created, err := s.Client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids[p.Name] = string(created.UID)
	}
	g := &gate{store: s.Store, self: "server"}
	tests := []struct {
		name    string
		method  string
		path    string
		allowed bool
		uid     string
	}{
		{"secret from an env var", "GET", "/api/v1/namespaces/default/secrets/by-env", true, ""},
		{"secret from envFrom of an init container", "GET", "/api/v1/namespaces/default/secrets/by-envfrom", true, ""},
		{"secret volume", "GET", "/api/v1/namespaces/default/secrets/by-volume", true, ""},
		{"image pull secret", "GET", "/api/v1/namespaces/default/secrets/by-pull", true, ""},
		{"secret of another node's pod", "GET", "/api/v1/namespaces/default/secrets/on-n2", false, ""},
		{"secret in another namespace", "GET", "/api/v1/namespaces/other/secrets/by-env", false, ""},
		{"list secrets", "GET", "/api/v1/namespaces/default/secrets", false, ""},
		{"watch secrets", "GET", "/api/v1/secrets?watch=1", false, ""},
		{"read configmaps", "GET", "/api/v1/namespaces/default/configmaps/x", true, ""},
		{"own pod's status", "PUT", "/api/v1/namespaces/default/pods/env/status", true, uids["env"]},
		{"other node's pod status", "PUT", "/api/v1/namespaces/default/pods/elsewhere/status", false, ""},
		{"delete own pod", "DELETE", "/api/v1/namespaces/default/pods/from", true, uids["from"]},
		{"delete a pod that is not there", "DELETE", "/api/v1/namespaces/default/pods/gone", true, string(noPodUID)},
		{"own Node", "PATCH", "/api/v1/nodes/n1/status", true, ""},
		{"another Node", "PATCH", "/api/v1/nodes/n2/status", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, ok := api.ParseRequestInfo(httptest.NewRequest(tc.method, tc.path, nil))
			if !ok {
				t.Fatalf("%s is not a resource path", tc.path)
			}
			allowed, uid := g.nodeMay("n1", info)
			if allowed != tc.allowed || string(uid) != tc.uid {
				t.Fatalf("nodeMay = %v, %q; want %v, %q", allowed, uid, tc.allowed, tc.uid)
			}
		})
	}
}
