package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const httpdDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: skiff.local/busybox:latest
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "echo hello from $HOSTNAME; mkdir -p /www; echo '<h1>skiff</h1>' > /www/index.html; exec httpd -f -p 8080 -h /www"]
        readinessProbe:
          httpGet: {path: /, port: 8080}
          periodSeconds: 1
`

// configPod prints its environment, built from a ConfigMap and a Secret,
// and files from its volumes (an emptyDir its init container wrote, a
// ConfigMap and a read-only Secret volume), and exits.
const configPod = `apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  MODE: production
  GREETING: hello
---
apiVersion: v1
kind: Secret
metadata:
  name: app-secret
stringData:
  password: s3cret
---
apiVersion: v1
kind: Pod
metadata:
  name: config
spec:
  restartPolicy: Never
  initContainers:
  - name: init
    image: skiff.local/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo from-init > /scratch/note"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes:
  - name: scratch
    emptyDir: {}
  - name: www
    configMap:
      name: app-config
      items: [{key: GREETING, path: index.html}]
  - name: certs
    secret: {secretName: app-secret}
  containers:
  - name: c
    image: skiff.local/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo mode=$APP_MODE greeting=$APP_GREETING password=$DB_PASSWORD url=$URL; echo note=$(cat /scratch/note) page=$(cat /www/index.html) key=$(cat /certs/password); touch /certs/x || echo read-only"]
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
    - {name: www, mountPath: /www}
    - {name: certs, mountPath: /certs, readOnly: true}
    envFrom:
    - prefix: APP_
      configMapRef: {name: app-config}
    env:
    - name: DB_PASSWORD
      valueFrom:
        secretKeyRef: {name: app-secret, key: password}
    - name: URL
      value: "db://$(APP_MODE)"
`

const ghostPod = `apiVersion: v1
kind: Pod
metadata:
  name: ghost
spec:
  containers:
  - name: ghost
    image: 127.0.0.1:1/missing/image:v1
    imagePullPolicy: IfNotPresent
`

// TestPodsRunForReal is issue 3's acceptance with the real binary: a
// Deployment of three httpd pods runs in containerd and gets Ready; logs and
// exec work through the API; a pod's environment and volumes come from a
// ConfigMap and a Secret; a missing image is reported without hurting anything else; a kill -9 of the daemon leaves the same containers running.
func TestPodsRunForReal(t *testing.T) {
	RequireRoot(t)
	d := NewDaemon(t, "pods")
	d.Start()
	d.WaitNodeReady(60 * time.Second)
	if out := d.MustCLI("", "image", "load", TestImage(t)); !strings.Contains(out, "loaded skiff.local/busybox:latest") {
		t.Fatalf("image load said %q", out)
	}
	d.MustCLI(httpdDeployment, "apply", "-f", "-")
	d.MustCLI("", "rollout", "status", "deployment/web", "--timeout", "90s")
	before := runningContainers(t, d, 3)

	pod := firstKey(before)
	if out := d.MustCLI("", "logs", pod); !strings.Contains(out, "hello from "+pod) {
		t.Fatalf("logs of %s: %q", pod, out)
	}
	if out := d.MustCLI("", "exec", pod, "--", "wget", "-qO-", "127.0.0.1:8080"); !strings.Contains(out, "<h1>skiff</h1>") {
		t.Fatalf("exec wget printed %q", out)
	}
	portForward(t, d, pod)

	d.MustCLI(configPod, "apply", "-f", "-")
	Eventually(t, 60*time.Second, "the config pod to print its environment", func() (bool, error) {
		out, err := d.CLI("", "logs", "config")
		return strings.Contains(out, "mode=production greeting=hello password=s3cret url=db://production") &&
			strings.Contains(out, "note=from-init page=hello key=s3cret") && strings.Contains(out, "read-only"), fmt.Errorf("%v: %s", err, out)
	})

	d.MustCLI(ghostPod, "apply", "-f", "-")
	Eventually(t, 60*time.Second, "ghost pod to report ErrImagePull", func() (bool, error) {
		p, err := d.Client().CoreV1().Pods("default").Get(context.Background(), "ghost", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") && w.Message != "" {
				t.Logf("ghost: %s: %s", w.Reason, w.Message)
				return true, nil
			}
		}
		return false, nil
	})
	runningContainers(t, d, 3)

	d.Kill()
	d.Start()
	after := runningContainers(t, d, 3)
	for name, id := range before {
		if after[name] != id {
			t.Errorf("pod %s: container %s before kill -9, %s after", name, id, after[name])
		}
	}
}

// portForward reaches the pod's httpd through skiff port-forward on a
// loopback port.
func portForward(t *testing.T, d *Daemon, pod string) {
	addr := FreePort(t)
	_, port, _ := net.SplitHostPort(addr)
	d.StartCLI("port-forward", "--address", "127.0.0.1", "pod/"+pod, port+":8080")
	Eventually(t, 30*time.Second, "a page through skiff port-forward", func() (bool, error) {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "<h1>skiff</h1>"), err
	})
}

// runningContainers waits until n web pods are Ready with one running
// container each, and returns pod name -> "containerID/restarts".
func runningContainers(t *testing.T, d *Daemon, n int) map[string]string {
	t.Helper()
	out := map[string]string{}
	Eventually(t, 90*time.Second, "web pods running and ready", func() (bool, error) {
		pods, err := d.Client().CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		got := map[string]string{}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 || !p.Status.ContainerStatuses[0].Ready {
				return false, nil
			}
			cs := p.Status.ContainerStatuses[0]
			got[p.Name] = fmt.Sprintf("%s/%d", cs.ContainerID, cs.RestartCount)
		}
		out = got
		return len(got) == n, nil
	})
	return out
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}
