package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"

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
	f.BoolVar(&o.Floor, "floor", false, "measure a minimal create handler (TLS, protobuf, one etcd transaction) instead of skiff: the ceiling of the ratio on this machine")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (server and clients) here")
	var so bench.SchedulerOptions
	sched := &cobra.Command{
		Use:   "scheduler",
		Short: "Pods bound per second with many Node objects (no agents)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			_, err := bench.RunScheduler(ctx, so, os.Stdout)
			return err
		},
	}
	sf := sched.Flags()
	sf.StringVar(&so.Kubeconfig, "kubeconfig", "", "measure this cluster's scheduler instead of starting one")
	sf.IntVar(&so.Nodes, "nodes", 5000, "Node objects to create")
	sf.IntVar(&so.Pods, "pods", 10000, "pods to create and bind")
	sf.IntVar(&so.Writers, "writers", 32, "concurrent pod creators")
	sf.BoolVar(&so.JSON, "json", false, "print one JSON object")
	var po bench.PodsOptions
	pods := &cobra.Command{
		Use:   "pods",
		Short: "Pod startup latency (create to Running) and agent memory with many pods on one node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			_, err := bench.RunPods(ctx, po, os.Stdout)
			return err
		},
	}
	pods.Flags().IntVar(&po.Pods, "pods", 100, "pods to create at once")
	pods.Flags().DurationVar(&po.Idle, "idle", 10*time.Second, "then measure the agent's CPU this long with the pods running (0: skip)")
	pods.Flags().BoolVar(&po.JSON, "json", false, "print one JSON object")
	var ro bench.RolloutOptions
	rollout := &cobra.Command{
		Use:   "rollout",
		Short: "Time a Deployment's creation and rolling update on one node, and the server's peak memory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			_, err := bench.RunRollout(ctx, ro, os.Stdout)
			return err
		},
	}
	rollout.Flags().IntVar(&ro.Replicas, "replicas", 300, "replicas of the Deployment")
	rollout.Flags().BoolVar(&ro.JSON, "json", false, "print one JSON object")
	var idleOpts bench.IdleOptions
	idle := &cobra.Command{
		Use:   "idle",
		Short: "Start a fresh server with its agent: time to a Ready node, then memory and CPU while idle",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			_, err := bench.RunIdle(ctx, idleOpts, os.Stdout)
			return err
		},
	}
	idle.Flags().DurationVar(&idleOpts.Duration, "duration", time.Minute, "how long to measure the idle server")
	idle.Flags().BoolVar(&idleOpts.JSON, "json", false, "print one JSON object")
	cmd.AddCommand(api, sched, pods, rollout, idle)
	return cmd
}
