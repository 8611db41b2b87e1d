package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestCronJobWithKubectl creates a CronJob and runs a Job from it by hand,
// without waiting for a minute boundary (the schedule itself is covered by the
// controller's tests, with a fake clock).
func TestCronJobWithKubectl(t *testing.T) {
	c, k := agentCluster(t)
	k.run(t, c, "create", "cronjob", "x", "--image=unused", "--schedule=*/1 * * * *", "--", "sh", "-c", "echo hi")

	out := k.run(t, c, "get", "cronjobs")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE" {
		t.Fatalf("get cronjobs:\n%s", out)
	}
	// ACTIVE and LAST SCHEDULE depend on whether a minute has turned.
	if f := strings.Fields(lines[1]); len(f) < 8 || f[0] != "x" || strings.Join(f[1:6], " ") != "*/1 * * * *" || f[6] != "<none>" || f[7] != "False" {
		t.Fatalf("get cronjobs row: %q", lines[1])
	}

	k.run(t, c, "create", "job", "--from=cronjob/x", "j1")
	if out, err := k.try(c, "wait", "--for=condition=complete", "job/j1", "--timeout=60s"); err != nil {
		state, _ := k.try(c, "get", "job,pods", "-o", "wide")
		t.Fatalf("wait for job j1: %v\n%s\n%s", err, out, state)
	}
	mustContain(t, "job j1 logs", k.run(t, c, "logs", "job/j1"), "hi")
	if owner := jsonpath(k, c, "job/j1", "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}"); owner != "CronJob/x" {
		t.Fatalf("job j1 owner %q, want CronJob/x", owner)
	}
	// The controller saw the hand-made job and said so, as upstream does.
	eventually(t, 20*time.Second, func() string {
		out, _ := k.try(c, "get", "events", "--field-selector", "involvedObject.kind=CronJob,involvedObject.name=x", "-o", "jsonpath={.items[*].reason}")
		if !strings.Contains(out, "UnexpectedJob") {
			return "cronjob events: " + out
		}
		return ""
	})

	// The API rejects what the controller could not run.
	out, err := k.try(c, "create", "cronjob", "bad", "--image=unused", "--schedule=61 * * * *", "--", "true")
	if err == nil || !strings.Contains(out, "spec.schedule: Invalid value") {
		t.Fatalf("bad schedule accepted: %v\n%s", err, out)
	}
}
