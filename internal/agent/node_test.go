package agent

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

// TestLeaseRenewsFromTheLastWrite: the lease is created once, renewed from
// the copy last written (one PUT, no GET), and read again after a failed
// renewal.
func TestLeaseRenewsFromTheLastWrite(t *testing.T) {
	client := fake.NewClientset()
	a := &Agent{opts: Options{NodeName: "n1"}, client: client, log: slog.Default()}
	ctx := context.Background()
	verbs := func() []string {
		var v []string
		for _, act := range client.Actions() {
			v = append(v, act.GetVerb())
		}
		client.ClearActions()
		return v
	}
	a.renewLease(ctx)
	if v := verbs(); !slices.Equal(v, []string{"get", "create"}) {
		t.Fatalf("first renewal: %v, want get, create", v)
	}
	a.renewLease(ctx)
	a.renewLease(ctx)
	if v := verbs(); !slices.Equal(v, []string{"update", "update"}) {
		t.Fatalf("renewals: %v, want two updates and no reads", v)
	}

	// Someone else wrote the lease: the renewal from the old copy conflicts,
	// so the agent reads it and renews from the current one.
	failed := false
	client.PrependReactor("update", "leases", func(clienttesting.Action) (bool, runtime.Object, error) {
		if failed {
			return false, nil, nil
		}
		failed = true
		return true, nil, apierrors.NewConflict(coordinationv1.Resource("leases"), "n1", errors.New("stale"))
	})
	a.renewLease(ctx)
	if v := verbs(); !slices.Equal(v, []string{"update", "get", "update"}) {
		t.Fatalf("renewal after a conflict: %v, want update, get, update", v)
	}
	l, err := client.CoordinationV1().Leases("kube-node-lease").Get(ctx, "n1", metav1.GetOptions{})
	if err != nil || l.Spec.RenewTime == nil || a.lease == nil {
		t.Fatalf("lease %v, %v; kept copy %v", l, err, a.lease)
	}
	client.ClearActions()

	// A failing server is not sent an extra read: the copy is kept and
	// tried again.
	failing := true
	client.PrependReactor("update", "leases", func(clienttesting.Action) (bool, runtime.Object, error) {
		if !failing {
			return false, nil, nil
		}
		return true, nil, apierrors.NewInternalError(errors.New("etcd down"))
	})
	a.renewLease(ctx)
	failing = false
	a.renewLease(ctx)
	if v := verbs(); !slices.Equal(v, []string{"update", "update"}) {
		t.Fatalf("renewals around a server error: %v, want two updates and no reads", v)
	}
}

// TestNodeStatusRereadsAfterAConflict: the node is read from the API
// server's cache (resourceVersion 0); a status write that conflicts reads it
// again from etcd and writes once more.
func TestNodeStatusRereadsAfterAConflict(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}}}
	client := fake.NewClientset(node)
	conflicted := false
	client.PrependReactor("update", "nodes", func(clienttesting.Action) (bool, runtime.Object, error) {
		if conflicted {
			return false, nil, nil
		}
		conflicted = true
		return true, nil, apierrors.NewConflict(corev1.Resource("nodes"), "n1", errors.New("stale"))
	})
	a := &Agent{opts: Options{NodeName: "n1"}, client: client, log: slog.Default(), recorder: record.NewFakeRecorder(10)}
	if err := a.postStatus(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	var reads []string
	updates := 0
	for _, act := range client.Actions() {
		switch act.GetVerb() {
		case "get":
			reads = append(reads, act.(clienttesting.GetActionImpl).GetOptions.ResourceVersion)
		case "update":
			updates++
		}
	}
	if !slices.Equal(reads, []string{"0", ""}) || updates != 2 {
		t.Fatalf("reads at resourceVersions %q and %d updates, want [0, \"\"] and 2", reads, updates)
	}
}
