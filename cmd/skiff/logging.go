package main

import (
	"flag"
	"log/slog"
	"os"

	"k8s.io/klog/v2"
)

// setupLogging sends skiff's warnings and errors to stderr, and keeps the
// klog output of the Kubernetes libraries (leader election, client-go) to
// warnings and worse as well, so a normal start prints only the ready line.
func setupLogging() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("legacy_stderr_threshold_behavior", "false") // honour the threshold while logging to stderr
	_ = fs.Set("stderrthreshold", "WARNING")
}
