package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestAgentVolumes: emptyDir, hostPath, configMap and secret volumes are
// prepared on the node and bind-mounted; a changed ConfigMap reaches the
// running pod's files; deleting the pod removes them.
func TestAgentVolumes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("secret volumes mount a tmpfs: needs root")
	}
	h := newHarness(t, nil)
	a := h.start(func(c *Config) { c.ConfigVolumeRefresh = 100 * time.Millisecond })
	ctx := context.Background()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Data: map[string]string{"index.html": "hi", "other": "x"}}
	if _, err := h.api.Client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls"}, Data: map[string][]byte{"key": []byte("k3y")}}
	if _, err := h.api.Client.CoreV1().Secrets("default").Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hostDir := filepath.Join(t.TempDir(), "made", "by", "agent")
	pod := simplePod("vols", corev1.RestartPolicyAlways, "a")
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}},
		{Name: "site", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "web"},
			Items:                []corev1.KeyToPath{{Key: "index.html", Path: "html/index.html", Mode: ptr.To[int32](0o600)}}}}},
		{Name: "certs", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "tls", DefaultMode: ptr.To[int32](0o400)}}},
	}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
		{Name: "scratch", MountPath: "/scratch"},
		{Name: "host", MountPath: "/host", ReadOnly: true},
		{Name: "site", MountPath: "/www"},
		{Name: "certs", MountPath: "/certs", ReadOnly: true},
		{Name: "scratch", MountPath: "/sub", SubPath: "part"},
	}
	created := h.createPod(pod)
	uid := string(created.UID)
	t.Cleanup(func() { _ = a.tearDownVolumes(uid) }) // before the data dir goes, even on failure
	h.waitPod("vols", 10*time.Second, "running", func(p *corev1.Pod) bool { return p != nil && p.Status.Phase == corev1.PodRunning })

	spec, ok := h.rt.Spec(fakeID(uid, "a", 0))
	if !ok {
		t.Fatal("no container")
	}
	vols := a.podVolumesDir(uid)
	want := []Mount{
		{HostPath: filepath.Join(vols, "scratch"), ContainerPath: "/scratch"},
		{HostPath: hostDir, ContainerPath: "/host", ReadOnly: true},
		{HostPath: filepath.Join(vols, "site"), ContainerPath: "/www", ReadOnly: true}, // config volumes always are
		{HostPath: filepath.Join(vols, "certs"), ContainerPath: "/certs", ReadOnly: true},
		{HostPath: filepath.Join(vols, "scratch", "part"), ContainerPath: "/sub"},
	}
	if len(spec.Mounts) != len(want) {
		t.Fatalf("mounts = %+v, want %+v", spec.Mounts, want)
	}
	for i := range want {
		if spec.Mounts[i] != want[i] {
			t.Fatalf("mount %d = %+v, want %+v", i, spec.Mounts[i], want[i])
		}
	}
	files := []struct {
		path, content string
		mode          os.FileMode
	}{
		{filepath.Join(vols, "site", "html", "index.html"), "hi", 0o600},
		{filepath.Join(vols, "certs", "key"), "k3y", 0o400},
	}
	for _, f := range files {
		data, err := os.ReadFile(f.path)
		fi, _ := os.Stat(f.path)
		if err != nil || string(data) != f.content || fi.Mode().Perm() != f.mode {
			t.Fatalf("%s: %q, %v, err %v; want %q, %v", f.path, data, fi.Mode().Perm(), err, f.content, f.mode)
		}
	}
	if _, err := os.Stat(filepath.Join(vols, "site", "other")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a key not listed in items was written: %v", err)
	}
	if fi, err := os.Stat(hostDir); err != nil || !fi.IsDir() {
		t.Fatalf("hostPath DirectoryOrCreate: %v", err)
	}
	if mounted, err := isMountPoint(filepath.Join(vols, "certs")); err != nil || !mounted {
		t.Fatalf("secret volume on tmpfs: mounted=%v err=%v", mounted, err)
	}

	cm.Data["index.html"] = "updated"
	if _, err := h.api.Client.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the changed ConfigMap in the running pod's volume", func() (bool, string) {
		data, err := os.ReadFile(files[0].path)
		return string(data) == "updated", fmt.Sprintf("%q, %v", data, err)
	})

	if err := h.api.Client.CoreV1().Pods("default").Delete(ctx, "vols", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "volumes removed", func() (bool, string) {
		_, err := os.Stat(filepath.Dir(vols))
		return errors.Is(err, os.ErrNotExist), "pod dir still there"
	})
}

// TestSubPathRefusesLinks: a subPath through a symbolic link a container
// could have planted is refused; plain components are created.
func TestSubPathRefusesLinks(t *testing.T) {
	root := t.TempDir()
	if err := os.Symlink("/", filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sub     string
		wantErr string
	}{
		{"a/b", ""},
		{"escape", "symbolic link"},
		{"escape/etc", "symbolic link"},
		{"../x", "stay inside the volume"},
		{"/abs", "stay inside the volume"},
	}
	for _, tc := range tests {
		t.Run(tc.sub, func(t *testing.T) {
			p, err := subPath(root, tc.sub)
			if tc.wantErr == "" {
				if fi, serr := os.Stat(p); err != nil || serr != nil || !fi.IsDir() || p != filepath.Join(root, tc.sub) {
					t.Fatalf("subPath = %q, %v (stat %v)", p, err, serr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("subPath = %q, %v; want an error with %q", p, err, tc.wantErr)
			}
		})
	}
}

// TestAgentUnsupportedVolume: a volume type the agent cannot provide is a
// CreateContainerConfigError naming it.
func TestAgentUnsupportedVolume(t *testing.T) {
	h := newHarness(t, nil)
	h.start(nil)
	pod := simplePod("pvc", corev1.RestartPolicyAlways, "a")
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}}}
	h.createPod(pod)
	h.waitPod("pvc", 10*time.Second, "CreateContainerConfigError", func(p *corev1.Pod) bool {
		cs, ok := containerState(p, "a")
		return ok && cs.State.Waiting != nil && cs.State.Waiting.Reason == reasonCreateContainerConf &&
			strings.Contains(cs.State.Waiting.Message, "persistentVolumeClaim is not supported")
	})
}
