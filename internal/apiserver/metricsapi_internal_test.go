package apiserver

import (
	"strings"
	"testing"
	"time"
)

func TestSeriesRateAndRestarts(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tests := []struct {
		name      string
		points    []point
		wantOK    bool
		wantMilli int64
	}{
		{"one point has no rate", []point{{cpu: 1, at: at(0)}}, false, 0},
		{"half a core", []point{{cpu: 1, at: at(0)}, {cpu: 2, at: at(2)}}, true, 500},
		{"last two points count", []point{{cpu: 0, at: at(0)}, {cpu: 10, at: at(1)}, {cpu: 10.25, at: at(2)}}, true, 250},
		{"counter going back is a restart", []point{{cpu: 5, at: at(0)}, {cpu: 1, at: at(1)}}, false, 0},
		{"a new start time is a restart", []point{{cpu: 1, at: at(0), start: 1}, {cpu: 2, at: at(1), start: 2}}, false, 0},
		{"a stale timestamp is not a window", []point{{cpu: 1, at: at(1)}, {cpu: 2, at: at(1)}}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s series
			for _, p := range tt.points {
				s = s.next(p)
			}
			usage, _, ok := s.usage()
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if ok && usage.Cpu().MilliValue() != tt.wantMilli {
				t.Errorf("cpu = %v, want %dm", usage.Cpu(), tt.wantMilli)
			}
		})
	}
}

func TestParseResourceMetrics(t *testing.T) {
	text := `# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 12.5 1700000000000
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 1024 1700000000000
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="c1",namespace="ns",pod="p"} 3 1700000000500
container_cpu_usage_seconds_total{container="c2",namespace="ns",pod="p"} 4
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="c1",namespace="ns",pod="p"} 2048 1700000000500
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="c1",namespace="ns",pod="p"} 1.6e9
# TYPE scrape_error gauge
scrape_error 0
`
	now := time.Unix(1800000000, 0)
	node, pods, err := parseResourceMetrics(strings.NewReader(text), now)
	if err != nil {
		t.Fatal(err)
	}
	if node == nil || node.cpu != 12.5 || node.mem != 1024 || !node.at.Equal(time.UnixMilli(1700000000000)) {
		t.Errorf("node = %+v", node)
	}
	c1, c2 := pods[podKey{"ns", "p"}]["c1"], pods[podKey{"ns", "p"}]["c2"]
	if c1.cpu != 3 || c1.mem != 2048 || c1.start != 1.6e9 || !c1.at.Equal(time.UnixMilli(1700000000500)) {
		t.Errorf("c1 = %+v", c1)
	}
	if c2.cpu != 4 || !c2.at.Equal(now) {
		t.Errorf("c2 = %+v (no timestamp: read at now)", c2)
	}
	if _, _, err := parseResourceMetrics(strings.NewReader("not prometheus {"), now); err == nil {
		t.Error("garbage parsed")
	}
}
