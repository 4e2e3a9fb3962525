package proto

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestKindsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds() {
		t.Run(k.Resource, func(t *testing.T) {
			if seen[k.GVK.Group+"/"+k.Resource] {
				t.Fatal("duplicate resource")
			}
			seen[k.GVK.Group+"/"+k.Resource] = true
			if got, ok := KindForResource(k.GVK.Group, k.Resource); !ok || got != k {
				t.Fatalf("KindForResource: %v %v", got, ok)
			}
			if got, ok := KindFor(k.GVK); !ok || got != k {
				t.Fatalf("KindFor: %v %v", got, ok)
			}
			obj := k.New()
			if got, err := KindOf(obj); err != nil || got != k {
				t.Fatalf("KindOf: %v %v", got, err)
			}
			gvks, _, err := Scheme.ObjectKinds(obj)
			if err != nil || gvks[0] != k.GVK {
				t.Fatalf("Scheme knows %T as %v (%v), want %v", obj, gvks, err, k.GVK)
			}
			list := k.NewList()
			if !meta.IsListType(list) {
				t.Fatalf("NewList returned %T", list)
			}
			lgvks, _, err := Scheme.ObjectKinds(list)
			if err != nil || lgvks[0].Kind != k.GVK.Kind+"List" {
				t.Fatalf("list kind %v (%v)", lgvks, err)
			}
			if _, err := meta.Accessor(obj); err != nil {
				t.Fatalf("no object metadata: %v", err)
			}
			if k.GroupVersionResource() != k.GVK.GroupVersion().WithResource(k.Resource) {
				t.Fatal("GroupVersionResource")
			}
		})
	}
	if _, err := KindOf(&metav1.Status{}); err == nil {
		t.Fatal("KindOf accepted an unserved type")
	}
}

func TestGroupVersions(t *testing.T) {
	gvs := GroupVersions()
	if len(gvs) != 2 || gvs[0].String() != "v1" || gvs[1].String() != "apps/v1" {
		t.Fatalf("group versions %v, want [v1 apps/v1]", gvs)
	}
	n := 0
	for _, gv := range gvs {
		n += len(KindsIn(gv))
	}
	if n != len(Kinds()) {
		t.Fatalf("KindsIn covers %d kinds, want %d", n, len(Kinds()))
	}
}

func TestKey(t *testing.T) {
	tests := []struct{ ns, name, key string }{
		{"default", "a", "default/a"},
		{"", "node-1", "node-1"},
	}
	for _, tt := range tests {
		if got := Key(tt.ns, tt.name); got != tt.key {
			t.Fatalf("Key(%q, %q) = %q, want %q", tt.ns, tt.name, got, tt.key)
		}
		if ns, name := SplitKey(tt.key); ns != tt.ns || name != tt.name {
			t.Fatalf("SplitKey(%q) = %q, %q", tt.key, ns, name)
		}
	}
}
