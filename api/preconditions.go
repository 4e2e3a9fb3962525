package api

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
)

type uidPreconditionKey struct{}

// WithUIDPrecondition makes every write of the request apply only to the
// object with this UID. An authorizer that allowed a request because of what
// one object is (a pod bound to the calling node) uses it, so a same-name
// object created in the meantime cannot be written in its place: the UID
// goes into the Raft command and the state machine checks it at apply time.
func WithUIDPrecondition(ctx context.Context, uid types.UID) context.Context {
	return context.WithValue(ctx, uidPreconditionKey{}, uid)
}

// uidPrecondition returns the UID a request's writes are limited to.
func uidPrecondition(ctx context.Context) (types.UID, bool) {
	uid, ok := ctx.Value(uidPreconditionKey{}).(types.UID)
	return uid, ok
}
