package containerd

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/identifiers"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiffhq/skiff/agent"
)

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	valid.DataDir = "/var/lib/skiff/runtime"
	valid.Namespace = "skiff-node1"
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"defaults plus dir and namespace", func(*Config) {}, ""},
		{"relative data dir", func(c *Config) { c.DataDir = "data" }, "DataDir"},
		{"bad namespace", func(c *Config) { c.Namespace = "skiff node" }, "Namespace"},
		{"socket path too long", func(c *Config) { c.DataDir = "/" + strings.Repeat("d", 100) }, "too long"},
		{"long path fine with external socket", func(c *Config) {
			c.DataDir = "/" + strings.Repeat("d", 100)
			c.Socket = "/run/containerd/containerd.sock"
		}, ""},
		{"relative socket", func(c *Config) { c.Socket = "c.sock" }, "Socket"},
		{"backoff inverted", func(c *Config) { c.RestartBackoffMax = time.Millisecond }, "RestartBackoff"},
		{"cgroup parent relative", func(c *Config) { c.CgroupParent = "skiff" }, "CgroupParent"},
		{"no follow interval", func(c *Config) { c.LogFollowInterval = 0 }, "LogFollowInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.mutate(&c)
			err := c.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if (tt.wantErr == "") != (err == nil) || !strings.Contains(got, tt.wantErr) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNamespaceForNode(t *testing.T) {
	tests := []struct{ node, want string }{
		{"node1", "skiff-node1"},
		{"Worker_2.example", "skiff-worker-2.example"},
		{"", "skiff-default"},
		{"--", "skiff-default"},
	}
	for _, tt := range tests {
		t.Run(tt.node, func(t *testing.T) {
			if got := NamespaceForNode(tt.node); got != tt.want {
				t.Fatalf("NamespaceForNode(%q) = %q, want %q", tt.node, got, tt.want)
			}
			if !validNamespace.MatchString(NamespaceForNode(tt.node)) {
				t.Fatalf("NamespaceForNode(%q) is not a valid namespace", tt.node)
			}
		})
	}
}

func TestNormalizeRef(t *testing.T) {
	tests := []struct {
		in, want string
		invalid  bool
	}{
		{in: "busybox", want: "docker.io/library/busybox:latest"},
		{in: "busybox:1.36", want: "docker.io/library/busybox:1.36"},
		{in: "library/busybox", want: "docker.io/library/busybox:latest"},
		{in: "skiff.local/busybox", want: "skiff.local/busybox:latest"},
		{in: "127.0.0.1:5000/app:v1", want: "127.0.0.1:5000/app:v1"},
		{in: "docker.io/library/busybox:latest", want: "docker.io/library/busybox:latest"},
		{in: "Busybox", invalid: true},
		{in: "", invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeRef(tt.in)
			if tt.invalid {
				if !errors.Is(err, agent.ErrInvalidImageName) {
					t.Fatalf("NormalizeRef(%q) error = %v, want ErrInvalidImageName", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeRef(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestOCIRefName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"latest", ""},
		{"1.36", ""},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"skiff.local/app", "skiff.local/app:latest"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := ociRefName(tt.in); got != tt.want {
				t.Fatalf("ociRefName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestResolveArgs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default"}}
	tests := []struct {
		name          string
		img           ocispec.ImageConfig
		command, args []string
		want          []string
		wantErr       bool
	}{
		{name: "image defaults", img: img, want: []string{"/entry", "default"}},
		{name: "args replace cmd", img: img, args: []string{"a", "b"}, want: []string{"/entry", "a", "b"}},
		{name: "command replaces entrypoint and cmd", img: img, command: []string{"sh"}, want: []string{"sh"}},
		{name: "command and args", img: img, command: []string{"sh", "-c"}, args: []string{"echo"}, want: []string{"sh", "-c", "echo"}},
		{name: "cmd only image", img: ocispec.ImageConfig{Cmd: []string{"sh"}}, want: []string{"sh"}},
		{name: "nothing at all", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveArgs(tt.img, tt.command, tt.args)
			if tt.wantErr {
				if !errors.Is(err, agent.ErrInvalidSpec) {
					t.Fatalf("resolveArgs error = %v, want ErrInvalidSpec", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("resolveArgs = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestCPUConversions(t *testing.T) {
	tests := []struct {
		milli  int64
		quota  int64
		shares uint64
	}{
		{milli: 1000, quota: 100_000, shares: 1024},
		{milli: 250, quota: 25_000, shares: 256},
		{milli: 1, quota: minCFSQuota, shares: minShares},
		{milli: 2500, quota: 250_000, shares: 2560},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dm", tt.milli), func(t *testing.T) {
			if got := cpuQuota(tt.milli); got != tt.quota {
				t.Fatalf("cpuQuota(%d) = %d, want %d", tt.milli, got, tt.quota)
			}
			if got := cpuShares(tt.milli); got != tt.shares {
				t.Fatalf("cpuShares(%d) = %d, want %d", tt.milli, got, tt.shares)
			}
		})
	}
}

func TestParseOOMKill(t *testing.T) {
	tests := []struct {
		name, in string
		want     int64
		wantErr  bool
	}{
		{name: "v1 oom_control", in: "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", want: 2},
		{name: "v2 memory.events", in: "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n", want: 1},
		{name: "old kernel without counter", in: "oom_kill_disable 0\nunder_oom 0\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOOMKill([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseOOMKill = %d, %v; want %d (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCgroupOOMKills(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"cgroup v1", map[string]string{"memory/ns/c1/memory.oom_control": "oom_kill 3\n"}, 3},
		{"cgroup v2", map[string]string{"cgroup.controllers": "memory\n", "ns/c1/memory.events": "oom_kill 1\n"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tt.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := cgroupOOMKills(root, "/ns/c1")
			if err != nil || got != tt.want {
				t.Fatalf("cgroupOOMKills = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	b := newBackoff(time.Second, 5*time.Second, time.Minute)
	steps := []struct {
		ranFor time.Duration
		want   time.Duration
	}{
		{0, time.Second},
		{time.Second, 2 * time.Second},
		{time.Second, 4 * time.Second},
		{time.Second, 5 * time.Second},
		{time.Second, 5 * time.Second},
		{2 * time.Minute, time.Second}, // ran long enough: reset
		{time.Second, 2 * time.Second},
	}
	for i, s := range steps {
		if got := b.next(s.ranFor); got != s.want {
			t.Fatalf("step %d: next(%v) = %v, want %v", i, s.ranFor, got, s.want)
		}
	}
}

func TestContainerIDAndLabels(t *testing.T) {
	spec := podSpec("web", "nginx", "sh")
	spec.Attempt = 3
	spec.Labels = map[string]string{"app.kubernetes.io/name": "web"}
	id := containerID(spec.PodUID, spec.Name, spec.Attempt)
	if err := identifiers.Validate(id); err != nil {
		t.Fatalf("containerID %q is not a valid containerd ID: %v", id, err)
	}
	if again := containerID(spec.PodUID, spec.Name, spec.Attempt); again != id {
		t.Fatalf("containerID not deterministic: %q then %q", id, again)
	}
	if other := containerID(spec.PodUID, spec.Name, 4); other == id {
		t.Fatalf("attempts 3 and 4 share ID %q", id)
	}
	labels := containerLabels(spec, "hash1", "/logs/3.log", "/skiff-x/"+id, "SIGTERM")
	labels[labelStartedAt] = "2026-01-02T03:04:05Z"
	st := statusFromLabels(id, labels)
	want := agent.ContainerStatus{
		ID: id, PodUID: spec.PodUID, PodName: "web", PodNamespace: "default", Name: "nginx",
		Attempt: 3, SpecHash: "hash1", LogPath: "/logs/3.log",
		StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Labels:    map[string]string{"app.kubernetes.io/name": "web"},
	}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("statusFromLabels =\n%+v\nwant\n%+v", st, want)
	}
}

func TestSpecHash(t *testing.T) {
	a := podSpec("p", "c", "sh")
	b := a
	b.Attempt, b.LogPath = 7, "/elsewhere.log"
	c := a
	c.Env = []agent.EnvVar{{Name: "X", Value: "1"}}
	if specHash(a) != specHash(b) {
		t.Fatalf("spec hash changed with attempt/log path")
	}
	if specHash(a) == specHash(c) {
		t.Fatalf("spec hash ignores env")
	}
}

func TestValidateContainerSpec(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*agent.ContainerSpec)
		ok     bool
	}{
		{"valid", func(*agent.ContainerSpec) {}, true},
		{"no image", func(s *agent.ContainerSpec) { s.Image = "" }, false},
		{"bad uid", func(s *agent.ContainerSpec) { s.PodUID = "a/b" }, false},
		{"relative mount", func(s *agent.ContainerSpec) { s.Mounts = []agent.Mount{{HostPath: "x", ContainerPath: "/x"}} }, false},
		{"reserved label", func(s *agent.ContainerSpec) { s.Labels = map[string]string{"io.skiff.pod.uid": "x"} }, false},
		{"negative memory", func(s *agent.ContainerSpec) { s.Resources.MemoryLimitBytes = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := podSpec("p", "c", "sh")
			tt.mutate(&s)
			err := validateContainerSpec(s)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, agent.ErrInvalidSpec)) {
				t.Fatalf("validateContainerSpec = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"PATH=/bin", "A=1"}, []string{"A=2", "B=3"})
	want := []string{"PATH=/bin", "A=2", "B=3"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("mergeEnv = %q, want %q", got, want)
	}
}

func TestRenderConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Namespace = "/var/lib/skiff", "skiff-n1"
	got := renderConfig(cfg)
	for _, want := range []string{
		`version = 2`,
		`root = "/var/lib/skiff/containerd/root"`,
		`state = "/var/lib/skiff/containerd/state"`,
		`"io.containerd.grpc.v1.cri"`,
		`address = "/var/lib/skiff/containerd/c.sock"`,
		`address = "/var/lib/skiff/containerd/c.sock.ttrpc"`,
		`path = "/var/lib/skiff/containerd/opt"`,
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("config lacks %q:\n%s", want, got)
		}
	}
}

func TestTailLog(t *testing.T) {
	tests := []struct {
		name, content string
		n             int
		want          string
	}{
		{"all", "a\nb\nc\n", 0, "a\nb\nc\n"},
		{"last two", "a\nb\nc\n", 2, "b\nc\n"},
		{"more than there are", "a\nb\n", 10, "a\nb\n"},
		{"unterminated last line", "a\nb\nc", 2, "b\nc"},
		{"empty", "", 3, ""},
		{"across chunks", strings.Repeat("x", tailChunk) + "\n" + strings.Repeat("y", tailChunk+5) + "\nz\n", 2,
			strings.Repeat("y", tailChunk+5) + "\nz\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "0.log")
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			off, err := TailLog(p, tt.n, &buf)
			if err != nil || buf.String() != tt.want || off != int64(len(tt.content)) {
				t.Fatalf("TailLog = %q, off %d, %v; want %q, off %d", buf.String(), off, err, tt.want, len(tt.content))
			}
		})
	}
}

func TestPreviousLogPath(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"0.log", "2.log", "2.log.1", "5.log"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		current, want string
		notFound      bool
	}{
		{current: "5.log", want: "2.log"},
		{current: "2.log", want: "0.log"},
		{current: "0.log", notFound: true},
		{current: "7.log", want: "5.log"},
	}
	for _, tt := range tests {
		t.Run(tt.current, func(t *testing.T) {
			got, err := PreviousLogPath(filepath.Join(dir, tt.current))
			if tt.notFound {
				if !errors.Is(err, agent.ErrNotFound) {
					t.Fatalf("PreviousLogPath error = %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil || got != filepath.Join(dir, tt.want) {
				t.Fatalf("PreviousLogPath = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestLimitWriter(t *testing.T) {
	var buf bytes.Buffer
	w := &limitWriter{w: &buf, left: 5}
	n, err := w.Write([]byte("abc"))
	if n != 3 || err != nil {
		t.Fatalf("first write = %d, %v", n, err)
	}
	n, err = w.Write([]byte("defg"))
	if n != 2 || !errors.Is(err, errLimitReached) || buf.String() != "abcde" {
		t.Fatalf("second write = %d, %v, buffer %q", n, err, buf.String())
	}
}

func TestTruncateHostname(t *testing.T) {
	long := strings.Repeat("a", 62) + "-b"
	tests := []struct{ in, want string }{
		{"web", "web"},
		{strings.Repeat("x", 63), strings.Repeat("x", 63)},
		{long, strings.Repeat("a", 62)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := truncateHostname(tt.in); got != tt.want {
				t.Fatalf("truncateHostname(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
