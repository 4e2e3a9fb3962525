package proto

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// CauseTypeCurrentResourceVersion is the cause type under which a 409
// Conflict reports the object's current resourceVersion (in Message), so a
// client can retry a compare-and-swap without another read.
const CauseTypeCurrentResourceVersion metav1.CauseType = "CurrentResourceVersion"

// NewConflict returns the 409 for a write whose resourceVersion precondition
// failed, naming the object's current resourceVersion.
func NewConflict(gr schema.GroupResource, name, currentRV string) error {
	err := apierrors.NewConflict(gr, name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again (current resourceVersion %s)", currentRV))
	err.ErrStatus.Details.Causes = []metav1.StatusCause{{
		Type: CauseTypeCurrentResourceVersion, Field: "metadata.resourceVersion", Message: currentRV,
	}}
	return err
}

// NewUIDConflict returns the 409 for a write whose UID precondition failed,
// in the Kubernetes API server's words.
func NewUIDConflict(gr schema.GroupResource, name, want, have string) error {
	//lint:ignore ST1005 the message is the Kubernetes API server's, word for word
	return apierrors.NewConflict(gr, name, fmt.Errorf("Precondition failed: UID in precondition: %s, UID in object meta: %s", want, have))
}
