package scheduler

import (
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
)

// nodeReady reports whether the node's Ready condition is True.
func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// untoleratedTaint returns the first of the node's taints with one of the
// given effects that no toleration tolerates.
func untoleratedTaint(taints []corev1.Taint, tolerations []corev1.Toleration, effects ...corev1.TaintEffect) (*corev1.Taint, bool) {
	for i := range taints {
		t := &taints[i]
		relevant := false
		for _, e := range effects {
			relevant = relevant || t.Effect == e
		}
		if !relevant {
			continue
		}
		tolerated := false
		for j := range tolerations {
			if tolerations[j].ToleratesTaint(logr.Discard(), t, false) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			return t, true
		}
	}
	return nil, false
}

// daemonTolerations adds the tolerations Kubernetes gives every daemon pod,
// so that a node going NotReady or unreachable does not evict it.
func daemonTolerations(in []corev1.Toleration) []corev1.Toleration {
	out := append([]corev1.Toleration(nil), in...)
	for _, key := range []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable} {
		want := corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}
		have := false
		for i := range out {
			have = have || out[i].MatchToleration(&want)
		}
		if !have {
			out = append(out, want)
		}
	}
	return out
}
