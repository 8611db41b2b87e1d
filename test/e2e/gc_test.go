package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestCascadingDelete deletes Deployments with each kubectl --cascade mode
// and checks what the garbage collector leaves of their ReplicaSets and pods.
func TestCascadingDelete(t *testing.T) {
	c, k := agentCluster(t)
	for _, d := range []string{"orphaned", "foreground", "background"} {
		k.run(t, c, "create", "deployment", d, "--image=busybox", "--replicas=2", "--", "sleep", "3600")
	}
	for _, d := range []string{"orphaned", "foreground", "background"} {
		k.run(t, c, "rollout", "status", "deploy/"+d, "--timeout=60s")
	}
	// names lists what carries app=<d>: "kind/name ownerKinds deleting", one a line.
	names := func(d string) []string {
		out, _ := k.try(c, "get", "deploy,rs,pods", "-l", "app="+d, "-o",
			`jsonpath={range .items[*]}{.kind}/{.metadata.name} {.metadata.ownerReferences[*].kind} {.metadata.deletionTimestamp}{"\n"}{end}`)
		return strings.Split(strings.TrimSpace(out), "\n")
	}

	t.Run("orphan keeps the ReplicaSet and pods", func(t *testing.T) {
		k.run(t, c, "delete", "deployment", "orphaned", "--cascade=orphan")
		// kubectl waited until the Deployment was gone.
		got := names("orphaned")
		var rs, pods int
		for _, l := range got {
			f := strings.Fields(l)
			switch {
			case strings.HasPrefix(l, "ReplicaSet/") && len(f) == 1:
				rs++ // no owner left, not deleting
			case strings.HasPrefix(l, "Pod/") && len(f) == 2 && f[1] == "ReplicaSet":
				pods++ // still the ReplicaSet's, not deleting
			default:
				t.Fatalf("unexpected %q in %q", l, got)
			}
		}
		if rs != 1 || pods != 2 {
			t.Fatalf("want 1 orphaned ReplicaSet and its 2 pods, got %q", got)
		}
	})

	t.Run("foreground keeps the Deployment until its pods are gone", func(t *testing.T) {
		pods := strings.Fields(k.run(t, c, "get", "pods", "-l", "app=foreground", "-o", "jsonpath={.items[*].metadata.name}"))
		if len(pods) != 2 {
			t.Fatalf("pods %v", pods)
		}
		// A finalizer of the test's own holds one pod, deleted, in place.
		k.run(t, c, "patch", "pod", pods[0], "--type=merge", "-p", `{"metadata":{"finalizers":["skiff.test/hold"]}}`)
		k.run(t, c, "delete", "deployment", "foreground", "--cascade=foreground", "--wait=false")
		eventually(t, 20*time.Second, func() string {
			if ts := jsonpath(k, c, "pod/"+pods[0], "{.metadata.deletionTimestamp}"); ts == "" {
				return "held pod not deleted yet"
			}
			if out, _ := k.try(c, "get", "pod", pods[1]); !strings.Contains(out, "NotFound") {
				return "other pod still there: " + out
			}
			return ""
		})
		for _, obj := range []string{"deploy/foreground", "rs/" + strings.Join(strings.Split(pods[0], "-")[:2], "-")} {
			got := jsonpath(k, c, obj, "{.metadata.deletionTimestamp} {.metadata.finalizers}")
			if !strings.Contains(got, "foregroundDeletion") || strings.HasPrefix(got, " ") {
				t.Fatalf("%s while a pod remains: %q, want deletionTimestamp and foregroundDeletion", obj, got)
			}
		}
		k.run(t, c, "patch", "pod", pods[0], "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
		eventually(t, 20*time.Second, func() string {
			if got := names("foreground"); got[0] != "" {
				return strings.Join(got, "; ")
			}
			return ""
		})
	})

	t.Run("background deletes the ReplicaSet and pods", func(t *testing.T) {
		k.run(t, c, "delete", "deployment", "background")
		eventually(t, 20*time.Second, func() string {
			if got := names("background"); got[0] != "" {
				return strings.Join(got, "; ")
			}
			return ""
		})
	})
}
