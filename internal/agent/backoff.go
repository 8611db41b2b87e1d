package agent

import "time"

// Crash-loop back-off, as the kubelet's: a crashed container restarts at
// once the first time, then after 10s, 20s, 40s … capped at 5 minutes; a
// container that ran for 10 minutes before exiting starts over.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 5 * time.Minute
	backoffReset   = 10 * time.Minute
)

// restartDelay is how long after its last exit a container with restartCount
// restarts so far may start again; ranFor is how long its last run lasted.
func restartDelay(restartCount int32, ranFor time.Duration) time.Duration {
	if restartCount == 0 || ranFor >= backoffReset {
		return 0
	}
	d := backoffInitial
	for i := int32(1); i < restartCount && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}
