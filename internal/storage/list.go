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

// List returns matching objects. resourceVersion=0 (any) and NotOlderThan are
// served from the watch cache; the rest (the default, exact, paginated) read
// etcd so that continue tokens name a revision etcd can still serve.
func (s *Store) List(ctx context.Context, opts ListOptions) (*ListResult, error) {
	rv, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	if opts.Continue == "" && opts.ResourceVersion != "" && opts.ResourceVersionMatch != metav1.ResourceVersionMatchExact {
		// "0" means any version; a non-zero RV without a match means not older than it.
		if err := s.cache.waitFor(ctx, rv); err != nil {
			return nil, err
		}
		items, rev := s.cache.snapshot(opts.Namespace, opts.Filter)
		return &ListResult{Items: items, Revision: rev}, nil
	}
	return s.listEtcd(ctx, opts, rv)
}

func (s *Store) listEtcd(ctx context.Context, opts ListOptions, rv int64) (*ListResult, error) {
	defer s.timed("list", time.Now())
	prefix := s.Prefix(opts.Namespace)
	start := prefix
	var rev int64
	if opts.Continue != "" {
		raw, err := base64.RawURLEncoding.DecodeString(opts.Continue)
		var tok continueToken
		if err == nil {
			err = json.Unmarshal(raw, &tok)
		}
		if err != nil || tok.RV <= 0 || len(tok.Start) < len(prefix) || tok.Start[:len(prefix)] != prefix {
			return nil, apierrors.NewBadRequest("invalid continue token")
		}
		rev, start = tok.RV, tok.Start
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
				tok, _ := json.Marshal(continueToken{APIVersion: "meta.k8s.io/v1", RV: rev, Start: string(kv.Key)})
				res.Continue = base64.RawURLEncoding.EncodeToString(tok)
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
