package e2e

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// TestBenchCommandsReport runs the benchmarks that start their own clusters,
// small, and checks that they report every figure.
func TestBenchCommandsReport(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args   []string
		fields []string
	}{
		{[]string{"rollout", "--replicas", "4"}, []string{"create_s", "rollout_s", "server_rss_mb", "agent_rss_mb"}},
		{[]string{"idle", "--duration", "2s"}, []string{"ready_s", "server_rss_mb"}},
		{[]string{"pods", "--pods", "5", "--idle", "1s"}, []string{"startup_p99_ms", "agent_rss_mb", "shims_anon_mb"}},
		{[]string{"api", "--objects", "200", "--watchers", "5", "--watch-writes", "5"},
			[]string{"api_creates_per_s", "etcd_puts_per_s", "ratio", "api_cpu_us_per_create", "create_p99_ms", "watch_delivery_p99_ms"}},
		{[]string{"api", "--floor", "--objects", "200"}, []string{"api_creates_per_s", "ratio", "api_cpu_us_per_create"}},
	} {
		out, err := exec.Command(skiffBin, append([]string{"bench"}, append(tc.args, "--json")...)...).Output()
		if err != nil {
			t.Fatalf("skiff bench %v: %v", tc.args, err)
		}
		res := map[string]float64{}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("skiff bench %v printed %q: %v", tc.args, out, err)
		}
		for _, f := range tc.fields {
			if res[f] <= 0 {
				t.Errorf("skiff bench %v: %s = %v, want > 0 (%s)", tc.args, f, res[f], out)
			}
		}
	}
}
