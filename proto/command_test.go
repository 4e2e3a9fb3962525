package proto

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCommandRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cmd  Command
	}{
		{"empty create", Command{Type: CommandCreate}},
		{"create", Command{Type: CommandCreate, Resource: "configmaps", Namespace: "default", Name: "a", Object: []byte("k8s\x00payload")}},
		{"update with preconditions", Command{Type: CommandUpdate, Group: "apps", Resource: "deployments", Namespace: "ns", Name: "web",
			Object: []byte{1, 2, 3}, ResourceVersion: 1 << 40, UID: "0f4c6a53-5d0b-4b5e-8d43-3b1a1c2d9e11"}},
		{"delete", Command{Type: CommandDelete, Resource: "nodes", Name: "n1", ResourceVersion: 7}},
		{"large object", Command{Type: CommandCreate, Resource: "secrets", Object: []byte(strings.Repeat("x", 1<<20))}},
		{"ignorable", Command{Type: IgnoreUnknown | 9, Resource: "future"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeCommand(tt.cmd.Encode())
			if err != nil {
				t.Fatal(err)
			}
			want := tt.cmd
			if len(want.Object) == 0 {
				want.Object = got.Object // nil and empty are the same on the wire
			}
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("got %+v, want %+v", *got, want)
			}
		})
	}
}

func TestDecodeCommandTruncated(t *testing.T) {
	data := (&Command{Type: CommandUpdate, Resource: "pods", Namespace: "default", Name: "p",
		Object: []byte("object"), ResourceVersion: 300, UID: "u"}).Encode()
	for n := 0; n < len(data); n++ {
		if _, err := DecodeCommand(data[:n]); !errors.Is(err, ErrMalformedCommand) {
			t.Fatalf("decoding %d of %d bytes: %v, want ErrMalformedCommand", n, len(data), err)
		}
	}
}

func TestCommandTypeString(t *testing.T) {
	tests := map[CommandType]string{
		CommandCreate: "create", CommandUpdate: "update", CommandDelete: "delete",
		IgnoreUnknown | CommandCreate: "create", 42: "command(42)",
	}
	for typ, want := range tests {
		if got := typ.String(); got != want {
			t.Fatalf("%d: got %q, want %q", uint8(typ), got, want)
		}
	}
}
