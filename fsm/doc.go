// Package fsm is skiff's replicated state machine: the object store that every
// replica builds by applying the same Raft log in the same order.
//
// # What it owns
//
//   - Store (store.go) keeps every API object in memory, keyed by kind and
//     namespace/name, and serves Get, List and Watch to the API server, the
//     controllers and the DNS server. Objects handed out by the store are
//     shared and immutable: a caller that wants to change one must DeepCopy
//     it first.
//   - Apply (apply.go) executes proto.Command values. It is deterministic:
//     the only inputs are the command bytes and the log index, which becomes
//     the object's resourceVersion. Preconditions (resourceVersion, UID) are
//     checked here, so compare-and-swap is linearizable.
//   - The watch hub (watch.go) keeps a ring of recent events per kind so a
//     watcher can resume from a resourceVersion; a watcher that asks for
//     history the ring no longer holds gets ErrGone (HTTP 410).
//   - FSM (fsm.go) adapts the store to hashicorp/raft's FSM and BatchingFSM
//     interfaces, and snapshot.go writes and reads the snapshot stream.
//
// # Use
//
// Without Raft (unit tests, benchmarks), call Store.Apply directly with a
// strictly increasing index. With Raft, pass NewFSM(store) to raft.NewRaft;
// Raft calls Apply, Snapshot and Restore from its single FSM goroutine, while
// any number of goroutines may read the store concurrently.
package fsm
