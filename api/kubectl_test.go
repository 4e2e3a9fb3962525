package api_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/cmd/apply"
	"k8s.io/kubectl/pkg/cmd/create"
	"k8s.io/kubectl/pkg/cmd/delete"
	"k8s.io/kubectl/pkg/cmd/explain"
	"k8s.io/kubectl/pkg/cmd/get"
	"k8s.io/kubectl/pkg/cmd/scale"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/skiffhq/skiff/api/apitest"
)

// kubectlFatal carries a kubectl fatal error out of cmdutil.CheckErr.
type kubectlFatal struct{ msg string }

// kubectl runs kubectl's own commands in-process against the test server,
// with default flags (so apply validates the way the real kubectl does),
// and returns stdout and the error kubectl would have exited with.
func kubectl(t *testing.T, s *apitest.Server, stdin string, args ...string) (out string, err error) {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	server, cacheDir := s.HTTP.URL, t.TempDir()
	flags.APIServer, flags.CacheDir = &server, &cacheDir
	f := cmdutil.NewFactory(flags)
	streams, _, stdout, stderr := genericiooptions.NewTestIOStreams()
	if stdin != "" {
		// kubectl reads "-f -" from the process's stdin; use a file.
		file := filepath.Join(t.TempDir(), "manifest.yaml")
		if err := os.WriteFile(file, []byte(stdin), 0o600); err != nil {
			t.Fatal(err)
		}
		for i := range args {
			if args[i] == "-" && i > 0 && args[i-1] == "-f" {
				args[i] = file
			}
		}
	}
	root := &cobra.Command{Use: "kubectl", SilenceUsage: true}
	flags.AddFlags(root.PersistentFlags())
	root.AddCommand(apply.NewCmdApply("kubectl", f, streams), get.NewCmdGet("kubectl", f, streams),
		scale.NewCmdScale(f, streams), explain.NewCmdExplain("kubectl", f, streams),
		delete.NewCmdDelete(f, streams), create.NewCmdCreate(f, streams))
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmdutil.BehaviorOnFatal(func(msg string, _ int) { panic(kubectlFatal{msg}) })
	defer cmdutil.DefaultBehaviorOnFatal()
	defer func() {
		if v := recover(); v != nil {
			f, ok := v.(kubectlFatal)
			if !ok {
				panic(v)
			}
			out, err = stdout.String(), fmt.Errorf("%s", strings.TrimSpace(f.msg))
		}
	}()
	err = root.Execute()
	if strings.Contains(stderr.String(), "warning: error calculating patch") {
		t.Errorf("kubectl fell back from the OpenAPI patch schema: %s", stderr)
	}
	return stdout.String(), err
}

func mustKubectl(t *testing.T, s *apitest.Server, stdin string, args ...string) string {
	t.Helper()
	out, err := kubectl(t, s, stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: nginx:1.27
        ports: [{containerPort: 80}]
        env: [{name: A, value: "1"}]
`

func TestKubectlApply(t *testing.T) {
	s := apitest.New(t)
	if out := mustKubectl(t, s, webDeployment, "apply", "-f", "-"); !strings.Contains(out, "deployment.apps/web created") {
		t.Fatalf("first apply: %q", out)
	}
	if out := mustKubectl(t, s, webDeployment, "apply", "-f", "-"); !strings.Contains(out, "deployment.apps/web unchanged") {
		t.Fatalf("second apply: %q", out)
	}
	// Someone else adds a container; apply must keep it (a strategic
	// merge by container name) while changing the image it owns.
	d, _ := s.Client.AppsV1().Deployments("default").Get(context.Background(), "web", metav1.GetOptions{})
	d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, d.Spec.Template.Spec.Containers[0])
	d.Spec.Template.Spec.Containers[1].Name = "sidecar"
	if _, err := s.Client.AppsV1().Deployments("default").Update(context.Background(), d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(webDeployment, "nginx:1.27", "nginx:1.28", 1)
	changed = strings.Replace(changed, `env: [{name: A, value: "1"}]`, `env: [{name: B, value: "2"}]`, 1)
	if out := mustKubectl(t, s, changed, "apply", "-f", "-"); !strings.Contains(out, "deployment.apps/web configured") {
		t.Fatalf("third apply: %q", out)
	}
	d, _ = s.Client.AppsV1().Deployments("default").Get(context.Background(), "web", metav1.GetOptions{})
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 2 || cs[0].Image != "nginx:1.28" || cs[1].Name != "sidecar" || len(cs[0].Env) != 1 || cs[0].Env[0].Name != "B" {
		t.Fatalf("containers after apply: %+v", cs)
	}
	if d.Generation != 3 {
		t.Fatalf("generation %d, want 3", d.Generation)
	}
}

func TestKubectlApplyValidation(t *testing.T) {
	s := apitest.New(t)
	bad := strings.Replace(webDeployment, "replicas: 2", "replicas: 2\n  foo: bar", 1)
	_, err := kubectl(t, s, bad, "apply", "-f", "-")
	if err == nil || !strings.Contains(err.Error(), `unknown field "spec.foo"`) {
		t.Fatalf("apply with an unknown field: %v", err)
	}
	if out := mustKubectl(t, s, bad, "apply", "--validate=false", "-f", "-"); !strings.Contains(out, "created") {
		t.Fatalf("apply --validate=false: %q", out)
	}
	invalid := strings.Replace(webDeployment, "name: web\n", "name: Web_1\n", 1)
	_, err = kubectl(t, s, invalid, "apply", "-f", "-")
	if err == nil || !strings.Contains(err.Error(), "metadata.name") {
		t.Fatalf("apply of an invalid name: %v", err)
	}
}

func TestKubectlGetScaleDelete(t *testing.T) {
	s := apitest.New(t)
	mustKubectl(t, s, webDeployment, "apply", "-f", "-")
	mustKubectl(t, s, "", "create", "configmap", "settings", "--from-literal=a=1", "--from-literal=b=2")
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"get", "deploy"}, []string{"NAME   READY   UP-TO-DATE   AVAILABLE   AGE", "web    0/2     0            0"}},
		{[]string{"get", "deployments.apps", "-o", "wide"}, []string{"CONTAINERS   IMAGES       SELECTOR", "app          nginx:1.27   app=web"}},
		{[]string{"get", "cm", "settings"}, []string{"NAME       DATA   AGE", "settings   2"}},
		{[]string{"get", "ns"}, []string{"NAME          STATUS   AGE", "default       Active", "kube-system   Active"}},
		{[]string{"get", "all"}, []string{"deployment.apps/web   0/2"}},
		{[]string{"get", "ns", "--chunk-size=1"}, []string{"NAME", "default", "kube-system"}},
		{[]string{"scale", "deploy", "web", "--replicas=5"}, []string{"deployment.apps/web scaled"}},
		{[]string{"get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"}, []string{"5"}},
		{[]string{"delete", "deploy", "web"}, []string{`deployment.apps "web" deleted`}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out := mustKubectl(t, s, "", tt.args...)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output does not contain %q:\n%s", w, out)
				}
			}
		})
	}
	_, err := s.Client.AppsV1().Deployments("default").Get(context.Background(), "web", metav1.GetOptions{})
	if err == nil {
		t.Fatal("deployment still there after kubectl delete")
	}
}

func TestKubectlExplain(t *testing.T) {
	s := apitest.New(t)
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"explain", "deployment.spec.replicas"}, []string{"GROUP:      apps", "KIND:       Deployment", "replicas", "<integer>", "Number of desired pods"}},
		{[]string{"explain", "pods.spec.containers"}, []string{"<[]Container>", "image\t<string>", "resources\t<ResourceRequirements>"}},
		{[]string{"explain", "svc", "--recursive"}, []string{"clusterIP\t<string>"}},
		{[]string{"explain", "pods.spec.containers", "--output=plaintext-openapiv2"}, []string{"RESOURCE: containers <[]Object>"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out := mustKubectl(t, s, "", tt.args...)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output does not contain %q:\n%s", w, out)
				}
			}
		})
	}
}
