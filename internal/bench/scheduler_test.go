package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

func TestRunSchedulerBindsEveryPod(t *testing.T) {
	var out bytes.Buffer
	res, err := RunScheduler(context.Background(), SchedulerOptions{Nodes: 20, Pods: 200, JSON: true}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Nodes != 20 || res.Pods != 200 || res.PodsPerS <= 0 || res.BindP99Ms < res.BindP50Ms {
		t.Fatalf("result %+v", res)
	}
	var printed SchedulerResult
	if err := json.Unmarshal(out.Bytes(), &printed); err != nil || printed != *res {
		t.Fatalf("printed %q (%v), want %+v", out.String(), err, res)
	}
}

// BenchmarkRunScheduler runs the sizes once per iteration:
//
//	go test -run '^$' -bench RunScheduler -benchtime 1x ./internal/bench/
func BenchmarkRunScheduler(b *testing.B) {
	for b.Loop() {
		var out bytes.Buffer
		res, err := RunScheduler(context.Background(), SchedulerOptions{Nodes: 5000, Pods: 10000}, &out)
		if err != nil {
			b.Fatal(err)
		}
		b.Log("\n" + out.String())
		b.ReportMetric(res.PodsPerS, "pods/s")
	}
}
