// Package quietlog drops the error logs libraries write when something ends
// the way it normally ends: a connection closed, a context cancelled.
//
// k8s.io/streaming's wsstream logs "Error on socket receive" when the server
// closes a finished WebSocket exec under its receive loop; apimachinery's
// upgrade-aware proxy logs a broken pipe when the backend has already hung
// up at the end of a stream; client-go's leader election logs "Error
// retrieving lease lock" when a clean stop cancels a renewal. All log
// through the context's logger at error level, and none means anything
// went wrong.
package quietlog

import (
	"context"
	"errors"
	"net"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// Context returns ctx with a logger that drops errors about a closed
// connection or a cancelled context, and passes everything else to ctx's
// logger.
func Context(ctx context.Context) context.Context {
	base := klog.FromContext(ctx)
	inner := base.GetSink()
	if inner == nil {
		return ctx // discards everything already
	}
	// One frame more (ours) between the caller and the sink that prints
	// the caller's file and line.
	if cd, ok := inner.(logr.CallDepthLogSink); ok {
		inner = cd.WithCallDepth(1)
	}
	return klog.NewContext(ctx, base.WithSink(sink{inner}))
}

type sink struct{ logr.LogSink }

// ended reports whether err only says the connection or the context is gone.
func ended(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.Canceled)
}

func (s sink) Info(level int, msg string, kv ...any) { s.LogSink.Info(level, msg, kv...) }

func (s sink) Error(err error, msg string, kv ...any) {
	if err != nil && ended(err) {
		return
	}
	s.LogSink.Error(err, msg, kv...)
}

func (s sink) WithValues(kv ...any) logr.LogSink { return sink{s.LogSink.WithValues(kv...)} }
func (s sink) WithName(name string) logr.LogSink { return sink{s.LogSink.WithName(name)} }

// WithCallDepth keeps callers' file and line right when they skip frames
// (utilruntime.HandleError does).
func (s sink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.LogSink.(logr.CallDepthLogSink); ok {
		return sink{cd.WithCallDepth(depth)}
	}
	return s
}
