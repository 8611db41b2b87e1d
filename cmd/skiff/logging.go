package main

import (
	"log/slog"
	"os"

	"k8s.io/klog/v2"
)

// setupLogging sends warnings and errors to stderr, and routes the klog
// output of the Kubernetes libraries (leader election, client-go) through
// the same handler, so a normal start prints only skiff's own lines.
func setupLogging() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	klog.SetSlogLogger(slog.Default())
}
