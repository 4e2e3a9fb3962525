package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// CommandType is the first byte of every Raft log entry skiff writes.
// Values are only ever appended, never renumbered.
type CommandType uint8

const (
	// CommandCreate stores a new object; it fails if the key exists.
	CommandCreate CommandType = 1
	// CommandUpdate replaces an existing object, subject to preconditions.
	CommandUpdate CommandType = 2
	// CommandDelete removes an object, subject to preconditions.
	CommandDelete CommandType = 3
	// CommandNoop changes nothing. A new leader writes one so that its
	// replica, and every follower's, provably covers all entries before
	// its term; it carries IgnoreUnknown, so any replica may skip it.
	CommandNoop CommandType = 4 | IgnoreUnknown

	// IgnoreUnknown marks a command type that a replica which does not
	// know it may skip instead of halting (for forward compatibility).
	IgnoreUnknown CommandType = 0x80
)

func (t CommandType) String() string {
	switch t &^ IgnoreUnknown {
	case CommandCreate:
		return "create"
	case CommandUpdate:
		return "update"
	case CommandDelete:
		return "delete"
	case CommandNoop &^ IgnoreUnknown:
		return "noop"
	}
	return fmt.Sprintf("command(%d)", uint8(t))
}

// ErrMalformedCommand is returned by DecodeCommand for bytes it cannot parse.
var ErrMalformedCommand = errors.New("proto: malformed command")

// Command is one write to the replicated store. Everything non-deterministic
// (UIDs, timestamps, generated names) is already fixed inside Object by the
// API server before the command is proposed.
type Command struct {
	Type CommandType
	// Group and Resource identify the kind ("" and "pods", "apps" and "deployments").
	Group    string
	Resource string
	// Namespace and Name identify the object. For create and update they
	// must match Object's metadata.
	Namespace string
	Name      string
	// Object is the protobuf encoding of the full object (create, update).
	Object []byte
	// ResourceVersion, when non-zero, must equal the stored object's
	// resourceVersion (update, delete).
	ResourceVersion uint64
	// UID, when set, must equal the stored object's UID (update, delete).
	UID string
}

// Encode returns the log entry bytes: the type byte, then each field as a
// uvarint length (or value) followed by its bytes.
func (c *Command) Encode() []byte {
	n := 1 + 6*binary.MaxVarintLen64 + len(c.Group) + len(c.Resource) + len(c.Namespace) + len(c.Name) + len(c.Object) + len(c.UID)
	b := make([]byte, 0, n)
	b = append(b, byte(c.Type))
	for _, s := range []string{c.Group, c.Resource, c.Namespace, c.Name} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Object)))
	b = append(b, c.Object...)
	b = binary.AppendUvarint(b, c.ResourceVersion)
	b = binary.AppendUvarint(b, uint64(len(c.UID)))
	b = append(b, c.UID...)
	return b
}

// DecodeCommand parses bytes written by Encode.
func DecodeCommand(b []byte) (*Command, error) {
	if len(b) == 0 {
		return nil, ErrMalformedCommand
	}
	d := decoder{b: b[1:]}
	c := &Command{Type: CommandType(b[0])}
	c.Group = d.str()
	c.Resource = d.str()
	c.Namespace = d.str()
	c.Name = d.str()
	c.Object = d.bytes()
	c.ResourceVersion = d.uvarint()
	c.UID = d.str()
	if d.err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformedCommand, d.err)
	}
	return c, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errors.New("short field")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.bytes()) }
