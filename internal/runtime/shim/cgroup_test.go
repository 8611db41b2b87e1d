package shim

import (
	"maps"
	"testing"
)

func TestParseKeyValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want map[string]uint64
	}{
		{"v2 memory.events", "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n",
			map[string]uint64{"low": 0, "high": 0, "max": 12, "oom": 2, "oom_kill": 1, "oom_group_kill": 0}},
		{"v1 memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
			map[string]uint64{"oom_kill_disable": 0, "under_oom": 0, "oom_kill": 3}},
		{"v2 cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
			map[string]uint64{"usage_usec": 1500, "user_usec": 1000, "system_usec": 500}},
		{"malformed lines skipped", "a 1\nb\nc x\nd 1 2\n\n", map[string]uint64{"a": 1}},
	} {
		if got := parseKeyValues([]byte(tc.in)); !maps.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSharesToWeight(t *testing.T) {
	for _, tc := range []struct{ shares, weight int64 }{
		{2, 1}, {1024, 39}, {262144, 10000}, {1, 1}, {1 << 20, 10000},
	} {
		if got := sharesToWeight(tc.shares); got != tc.weight {
			t.Errorf("sharesToWeight(%d) = %d, want %d", tc.shares, got, tc.weight)
		}
	}
}
