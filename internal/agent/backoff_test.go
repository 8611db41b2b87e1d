package agent

import (
	"testing"
	"time"
)

func TestRestartDelay(t *testing.T) {
	cases := []struct {
		restarts int32
		ranFor   time.Duration
		want     time.Duration
	}{
		{0, time.Second, 0},
		{1, time.Second, 10 * time.Second},
		{2, time.Second, 20 * time.Second},
		{3, time.Second, 40 * time.Second},
		{5, time.Second, 160 * time.Second},
		{6, time.Second, 5 * time.Minute},
		{40, time.Second, 5 * time.Minute},
		{7, 11 * time.Minute, 0},
	}
	for _, c := range cases {
		if got := restartDelay(c.restarts, c.ranFor); got != c.want {
			t.Errorf("restartDelay(%d, %s) = %s, want %s", c.restarts, c.ranFor, got, c.want)
		}
	}
}
