package storage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ListOptions select what a list or watch returns.
type ListOptions struct {
	Namespace            string
	Filter               func(runtime.Object) bool
	ResourceVersion      string
	ResourceVersionMatch metav1.ResourceVersionMatch
	Limit                int64
	Continue             string
}

// ListResult is a page of objects at one revision.
type ListResult struct {
	Items     []runtime.Object
	Revision  int64
	Continue  string
	Remaining *int64
}

type continueToken struct {
	APIVersion string `json:"v"`
	RV         int64  `json:"rv"`
	Start      string `json:"start"`
}

func parseRV(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	rv, err := strconv.ParseInt(s, 10, 64)
	if err != nil || rv < 0 {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q", s))
	}
	return rv, nil
}

// List returns matching objects. Lists without a resourceVersion (consistent
// reads) are served from the watch cache once it has caught up with etcd's
// current revision, as upstream's ConsistentListFromCache does; so are
// resourceVersion=0 (any) and NotOlderThan. A paginated list from the cache
// keeps its sorted snapshot for a while so that its continue tokens are
// served from it too; a token whose snapshot is gone, and Exact lists, read
// etcd at the token's revision (the cache at a revision equals etcd at it).
func (s *Store) List(ctx context.Context, opts ListOptions) (*ListResult, error) {
	rv, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.Continue != "":
		rev, start, err := parseContinue(opts.Continue, s.Prefix(opts.Namespace))
		if err != nil {
			return nil, err
		}
		if snap := s.cache.snapshotAt(rev, s.Prefix(opts.Namespace)); snap != nil {
			return snap.page(start, opts.Limit, opts.Filter), nil
		}
	case opts.ResourceVersion == "":
		if res, ok := s.listConsistentFromCache(ctx, opts); ok {
			return res, nil
		}
	case opts.ResourceVersionMatch != metav1.ResourceVersionMatchExact:
		// "0" means any version; a non-zero RV without a match means not older than it.
		if err := s.cache.waitFor(ctx, rv); err != nil {
			return nil, err
		}
		items, rev := s.cache.snapshot(opts.Namespace, opts.Filter)
		return &ListResult{Items: items, Revision: rev}, nil
	}
	return s.listEtcd(ctx, opts, rv)
}

// listConsistentFromCache serves a consistent read from the cache after it
// has seen etcd's current revision (one cheap count-only request). ok is
// false when the cache cannot confirm that in time: etcd answers instead.
func (s *Store) listConsistentFromCache(ctx context.Context, opts ListOptions) (*ListResult, bool) {
	rev, err := s.Revision(ctx)
	if err != nil || s.cache.waitFor(ctx, rev) != nil {
		return nil, false
	}
	prefix := s.Prefix(opts.Namespace)
	if opts.Limit <= 0 {
		items, rev := s.cache.snapshot(opts.Namespace, opts.Filter)
		return &ListResult{Items: items, Revision: rev}, true
	}
	snap := s.cache.sortedSnapshot(prefix)
	res := snap.page(prefix, opts.Limit, opts.Filter)
	if res.Continue != "" {
		s.cache.keepSnapshot(snap)
	}
	return res, true
}

// parseContinue checks a continue token against the listed prefix and
// returns its revision and the key to resume from.
func parseContinue(token, prefix string) (int64, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	var tok continueToken
	if err == nil {
		err = json.Unmarshal(raw, &tok)
	}
	if err != nil || tok.RV <= 0 || len(tok.Start) < len(prefix) || tok.Start[:len(prefix)] != prefix {
		return 0, "", apierrors.NewBadRequest("invalid continue token")
	}
	return tok.RV, tok.Start, nil
}

func encodeContinue(rev int64, start string) string {
	tok, _ := json.Marshal(continueToken{APIVersion: "meta.k8s.io/v1", RV: rev, Start: start})
	return base64.RawURLEncoding.EncodeToString(tok)
}

func (s *Store) listEtcd(ctx context.Context, opts ListOptions, rv int64) (*ListResult, error) {
	defer s.timed("list", time.Now())
	prefix := s.Prefix(opts.Namespace)
	start := prefix
	var rev int64
	if opts.Continue != "" {
		var err error
		if rev, start, err = parseContinue(opts.Continue, prefix); err != nil {
			return nil, err
		}
	} else if opts.ResourceVersionMatch == metav1.ResourceVersionMatchExact {
		rev = rv
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	res := &ListResult{}
	limit := opts.Limit
	for {
		getOpts := []clientv3.OpOption{clientv3.WithRange(end)}
		if rev > 0 {
			getOpts = append(getOpts, clientv3.WithRev(rev))
		}
		if limit > 0 {
			// Read a little more than needed: the filter may drop some.
			getOpts = append(getOpts, clientv3.WithLimit(limit-int64(len(res.Items))+1))
		}
		resp, err := s.client.Get(ctx, start, getOpts...)
		if err != nil {
			if err == rpctypes.ErrCompacted {
				return nil, apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
			}
			if err == rpctypes.ErrFutureRev {
				return nil, apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", rev, 0), 1)
			}
			return nil, storageError(err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		res.Revision = rev
		for i, kv := range resp.Kvs {
			if limit > 0 && int64(len(res.Items)) == limit {
				res.Continue = encodeContinue(rev, string(kv.Key))
				if opts.Filter == nil {
					left := resp.Count - int64(i)
					if resp.More || left > 0 {
						res.Remaining = &left
					}
				}
				return res, nil
			}
			obj, err := s.decode(kv.Value, kv.ModRevision)
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			if opts.Filter == nil || opts.Filter(obj) {
				res.Items = append(res.Items, obj)
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return res, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Revision returns etcd's current revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	resp, err := s.client.Get(ctx, "/registry/health", clientv3.WithCountOnly())
	if err != nil {
		return 0, storageError(err)
	}
	return resp.Header.Revision, nil
}
