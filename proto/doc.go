// Package proto holds skiff's wire vocabulary: the API kinds it serves (as
// k8s.io/api types), their defaults and validation, and the Raft command
// envelope that carries writes from the API server to the replicated state
// machine in package fsm.
//
// The package has no state and no I/O. Everything here is deterministic so
// that the same bytes produce the same state on every replica:
//
//   - Kinds (kinds.go) is the table of every resource skiff serves: group,
//     version, kind, plural, short names, scope and constructors. The API
//     server, the FSM, discovery and the CLI all read this one table.
//   - Command (command.go) is a 1-byte type followed by a binary payload.
//     New command types are only ever appended; a type with the
//     IgnoreUnknown bit set may be skipped by an older replica.
//   - Default (defaults.go) fills the fields Kubernetes would default, and
//     Validate (validate*.go) returns a field.ErrorList naming every bad field,
//     in the same words the Kubernetes API server uses.
package proto
