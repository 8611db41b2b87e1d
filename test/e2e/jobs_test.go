package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// jobPods returns the pods of a job with their container's start and finish
// times, as the agent reported them.
func jobPods(t *testing.T, k kubectl, c *cluster, job string) (starts, ends []time.Time) {
	t.Helper()
	var list struct {
		Items []struct {
			Status struct {
				ContainerStatuses []struct {
					State struct {
						Terminated *struct{ StartedAt, FinishedAt time.Time }
					}
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(k.run(t, c, "get", "pods", "-l", "job-name="+job, "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if term := cs.State.Terminated; term != nil {
				starts, ends = append(starts, term.StartedAt), append(ends, term.FinishedAt)
			}
		}
	}
	return starts, ends
}

func jobYAML(name, spec, command string) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata:
  name: %s
spec:
%s
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: ["sh", "-c", %q]
`, name, spec, command)
}

// TestJobWalkthroughs runs the Job examples of Kubernetes' tutorials at once
// on one node: a single pod, five completions one at a time, five at once,
// and failing jobs stopped by their deadline or their backoffLimit.
func TestJobWalkthroughs(t *testing.T) {
	c, k := agentCluster(t)
	for _, doc := range []string{
		jobYAML("single", "  completions: 1", "sleep 1"),
		jobYAML("serial", "  completions: 5\n  parallelism: 1", "sleep 1"),
		jobYAML("parallel", "  completions: 5\n  parallelism: 5", "sleep 2"),
		jobYAML("deadline", "  backoffLimit: 5\n  activeDeadlineSeconds: 6", "exit 1"),
		jobYAML("backoff", "  backoffLimit: 1\n  activeDeadlineSeconds: 120", "exit 1"),
	} {
		applyYAML(t, k, c, doc)
	}
	condition := func(job, typ string) string {
		return jsonpath(k, c, "job/"+job, fmt.Sprintf(`{.status.conditions[?(@.type==%q)].reason}`, typ))
	}
	eventually(t, 90*time.Second, func() string {
		var waiting []string
		for _, j := range []string{"single", "serial", "parallel"} {
			if jsonpath(k, c, "job/"+j, `{.status.conditions[?(@.type=="Complete")].status}`) != "True" {
				waiting = append(waiting, j)
			}
		}
		for j, reason := range map[string]string{"deadline": "DeadlineExceeded", "backoff": "BackoffLimitExceeded"} {
			if r := condition(j, "Failed"); r != reason {
				waiting = append(waiting, fmt.Sprintf("%s (Failed reason %q, want %s)", j, r, reason))
			}
		}
		if len(waiting) > 0 {
			return "jobs not finished as expected: " + strings.Join(waiting, ", ")
		}
		return ""
	})
	mustContain(t, "get jobs", k.run(t, c, "get", "jobs"), "single", "1/1", "serial", "5/5", "parallel", "5/5")

	starts, ends := jobPods(t, k, c, "serial")
	if len(starts) != 5 {
		t.Fatalf("serial: %d finished pods, want 5", len(starts))
	}
	// One at a time: sorted by start, each starts no earlier than the one
	// before finished (the times have one-second resolution).
	idx := make([]int, 5)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return starts[a].Compare(starts[b]) })
	for i := 1; i < 5; i++ {
		if starts[idx[i]].Before(ends[idx[i-1]]) {
			t.Fatalf("serial: pod started at %s before the previous one finished at %s", starts[idx[i]], ends[idx[i-1]])
		}
	}
	starts, _ = jobPods(t, k, c, "parallel")
	if len(starts) != 5 {
		t.Fatalf("parallel: %d finished pods, want 5", len(starts))
	}
	if spread := slices.MaxFunc(starts, time.Time.Compare).Sub(slices.MinFunc(starts, time.Time.Compare)); spread > time.Second {
		t.Fatalf("parallel: pods started %s apart, want within a second", spread)
	}
	// The backoffLimit job stopped after backoffLimit+1 failed pods.
	if n := jsonpath(k, c, "job/backoff", "{.status.failed}"); n != "2" {
		t.Fatalf("backoff: status.failed = %q, want 2", n)
	}
}
