package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/bench"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure skiff (see subcommands)"}
	var o bench.APIOptions
	var cpuProfile string
	api := &cobra.Command{
		Use:   "api",
		Short: "API create throughput against raw etcd, create latency, and watch fan-out",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			_, err := bench.RunAPI(ctx, o, os.Stdout)
			return err
		},
	}
	f := api.Flags()
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "measure this cluster instead of starting one (skips the etcd baseline)")
	f.IntVar(&o.Objects, "objects", 10000, "ConfigMaps of 1 KiB to create")
	f.IntVar(&o.Writers, "writers", 32, "concurrent writers")
	f.IntVar(&o.Watchers, "watchers", 1000, "concurrent watches for the fan-out figure")
	f.IntVar(&o.WatchWrites, "watch-writes", 200, "writes timed through the watchers")
	f.BoolVar(&o.JSON, "json", false, "print one JSON object")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (server and clients) here")
	cmd.AddCommand(api)
	return cmd
}
