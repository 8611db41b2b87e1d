package quietlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/go-logr/logr/funcr"
	"k8s.io/klog/v2"
)

func TestDropsOnlyEndingErrors(t *testing.T) {
	var out bytes.Buffer
	base := funcr.New(func(prefix, args string) { fmt.Fprintln(&out, prefix, args) }, funcr.Options{})
	logger := klog.FromContext(Context(klog.NewContext(context.Background(), base)))

	logger.Error(fmt.Errorf("read tcp 127.0.0.1:1->127.0.0.1:2: %w", net.ErrClosed), "Error on socket receive")
	logger.Error(&net.OpError{Op: "write", Err: syscall.EPIPE}, "Error proxying data from client to backend")
	logger.WithValues("k", "v").Error(net.ErrClosed, "closed, with values")
	logger.Error(fmt.Errorf("get lease: %w", context.Canceled), "Error retrieving lease lock")
	if out.Len() != 0 {
		t.Fatalf("ending errors were logged:\n%s", &out)
	}
	logger.Error(errors.New("tls: bad certificate"), "upgrade failed")
	logger.WithName("proxy").Info("kept")
	logger.WithCallDepth(1).Error(errors.New("deeper"), "kept with its caller")
	for _, want := range []string{"tls: bad certificate", "kept", "deeper"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("%q was dropped; got:\n%s", want, &out)
		}
	}
}
