package storage

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// leases hands out etcd leases for objects that expire (events, after
// --event-ttl). Granting one lease per write would cost a round trip and an
// etcd lease each, so a lease is shared by all writes within a reuse window:
// it is granted for ttl+reuse and handed out while it still has at least
// ttl to live, so an object lives between ttl and ttl+reuse (as upstream's
// lease manager does, reuse = 5% of ttl, at most a minute).
type leases struct {
	client *clientv3.Client
	ttl    time.Duration
	reuse  time.Duration

	mu      sync.Mutex
	id      clientv3.LeaseID
	expires time.Time
}

func newLeases(client *clientv3.Client, ttl time.Duration) *leases {
	return &leases{client: client, ttl: ttl, reuse: min(ttl/20, time.Minute)}
}

// option returns the put option binding a key to a current lease.
func (l *leases) option(ctx context.Context) (clientv3.OpOption, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.id == 0 || l.expires.Sub(now) < l.ttl {
		life := l.ttl + l.reuse
		resp, err := l.client.Grant(ctx, int64((life+time.Second-1)/time.Second))
		if err != nil {
			return nil, err
		}
		l.id, l.expires = resp.ID, now.Add(life)
	}
	return clientv3.WithLease(l.id), nil
}
