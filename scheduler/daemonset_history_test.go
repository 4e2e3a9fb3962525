package scheduler

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// TestDaemonSetHistory: every template gets a ControllerRevision; applying
// an old revision's data (kubectl rollout undo) rolls the pods back and
// renumbers that revision; revisionHistoryLimit prunes the rest.
func TestDaemonSetHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startKubelet(nil)
	e.node("n1", "2", "4Gi", nil)
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Annotations: map[string]string{"kubernetes.io/change-cause": "v1"}},
		Spec: appsv1.DaemonSetSpec{
			Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template:             podTemplate("agent", "agent:1"),
			RevisionHistoryLimit: ptr.To[int32](1),
		},
	}
	if _, err := e.c.AppsV1().DaemonSets("default").Create(e.ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("revision 1", revisionsAre(e, "agent:1", 1))
	e.eventually("rolled out", daemonSetDone(e, 1))

	setImage := func(image string) {
		t.Helper()
		ds, err := e.c.AppsV1().DaemonSets("default").Get(e.ctx, "agent", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ds.Spec.Template.Spec.Containers[0].Image = image
		if _, err := e.c.AppsV1().DaemonSets("default").Update(e.ctx, ds, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setImage("agent:2")
	e.eventually("revisions 1 and 2", revisionsAre(e, "agent:1", 1, "agent:2", 2))
	e.eventually("rolled out agent:2", podsRun(e, "agent:2"))

	// kubectl rollout undo: patch the DaemonSet with revision 1's data.
	list, err := e.c.AppsV1().ControllerRevisions("default").List(e.ctx, metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil {
		t.Fatal(err)
	}
	var rev1 *appsv1.ControllerRevision
	for i := range list.Items {
		if list.Items[i].Revision == 1 {
			rev1 = &list.Items[i]
		}
	}
	if rev1 == nil {
		t.Fatalf("no revision 1 in %d revisions", len(list.Items))
	}
	if _, err := e.c.AppsV1().DaemonSets("default").Patch(e.ctx, "agent", types.StrategicMergePatchType, rev1.Data.Raw, metav1.PatchOptions{}); err != nil {
		t.Fatalf("undo: %v", err)
	}
	e.eventually("agent:1 renumbered to 3", revisionsAre(e, "agent:2", 2, "agent:1", 3))
	e.eventually("rolled back to agent:1", podsRun(e, "agent:1"))

	setImage("agent:3")
	e.eventually("revision 4, limit 1 prunes revision 2", revisionsAre(e, "agent:1", 3, "agent:3", 4))

	// Deleted with its dependents orphaned and created again: the new
	// DaemonSet adopts the revision of its template.
	orphan := metav1.DeletePropagationOrphan
	if err := e.c.AppsV1().DaemonSets("default").Delete(e.ctx, "agent", metav1.DeleteOptions{PropagationPolicy: &orphan}); err != nil {
		t.Fatal(err)
	}
	e.eventually("DaemonSet gone, revisions orphaned", func() (bool, error) {
		if _, err := e.c.AppsV1().DaemonSets("default").Get(e.ctx, "agent", metav1.GetOptions{}); err == nil {
			return false, nil
		}
		list, err := e.c.AppsV1().ControllerRevisions("default").List(e.ctx, metav1.ListOptions{LabelSelector: "app=agent"})
		if err != nil || len(list.Items) != 2 {
			return false, err
		}
		for _, r := range list.Items {
			if metav1.GetControllerOf(&r) != nil {
				return false, nil
			}
		}
		return true, nil
	})
	again := ds.DeepCopy()
	again.ObjectMeta = metav1.ObjectMeta{Name: "agent", Annotations: ds.Annotations}
	again.Spec.Template.Spec.Containers[0].Image = "agent:3"
	again, err = e.c.AppsV1().DaemonSets("default").Create(e.ctx, again, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.eventually("the agent:3 revision adopted", func() (bool, error) {
		list, err := e.c.AppsV1().ControllerRevisions("default").List(e.ctx, metav1.ListOptions{LabelSelector: "app=agent"})
		if err != nil {
			return false, err
		}
		for _, r := range list.Items {
			if ref := metav1.GetControllerOf(&r); ref != nil && ref.UID == again.UID && strings.Contains(string(r.Data.Raw), "agent:3") {
				return true, nil
			}
		}
		return false, nil
	})
}

// revisionsAre checks the DaemonSet's revisions by image and number, in
// order of revision.
func revisionsAre(e *env, want ...any) func() (bool, error) {
	return func() (bool, error) {
		list, err := e.c.AppsV1().ControllerRevisions("default").List(e.ctx, metav1.ListOptions{LabelSelector: "app=agent"})
		if err != nil {
			return false, err
		}
		sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Revision < list.Items[j].Revision })
		var got []any
		for _, r := range list.Items {
			var patch struct {
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct{ Image string }
						}
					}
				}
			}
			if err := json.Unmarshal(r.Data.Raw, &patch); err != nil || len(patch.Spec.Template.Spec.Containers) != 1 {
				return false, fmt.Errorf("revision %s data %s: %v", r.Name, r.Data.Raw, err)
			}
			if len(r.OwnerReferences) != 1 || r.OwnerReferences[0].Kind != "DaemonSet" || r.Annotations["kubernetes.io/change-cause"] != "v1" {
				return false, fmt.Errorf("revision %s: owners %v, annotations %v", r.Name, r.OwnerReferences, r.Annotations)
			}
			got = append(got, patch.Spec.Template.Spec.Containers[0].Image, r.Revision)
		}
		return fmt.Sprint(got...) == fmt.Sprint(want...), nil
	}
}

// podsRun reports whether the DaemonSet's one pod runs image and the
// rollout is done.
func podsRun(e *env, image string) func() (bool, error) {
	return func() (bool, error) {
		byNode, err := e.daemonPods()
		if err != nil || len(byNode["n1"]) != 1 || byNode["n1"][0].Spec.Containers[0].Image != image {
			return false, err
		}
		return daemonSetDone(e, 1)()
	}
}
