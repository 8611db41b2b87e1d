package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/runtime/process"
	"github.com/skiff-sh/skiff/internal/runtime/shim"
	"github.com/skiff-sh/skiff/internal/server"
)

// agentFlags are the flags `skiff agent` and `skiff server` share for the node agent.
type agentFlags struct {
	nodeName, rootDir, labels, taints, nodeIP string
	kubeletPort, maxPods                      int
}

func (f *agentFlags) register(cmd *cobra.Command, defaultRoot string) {
	host, _ := os.Hostname()
	fl := cmd.Flags()
	fl.StringVar(&f.nodeName, "node-name", host, "name of this node")
	fl.StringVar(&f.rootDir, "root-dir", defaultRoot, "pod state and logs (server default: <data-dir>/agent)")
	fl.IntVar(&f.kubeletPort, "kubelet-port", 10250, "HTTPS port of the agent (logs for the API server)")
	fl.StringVar(&f.labels, "node-labels", "", "labels to register the node with: k=v,k2=v2")
	fl.StringVar(&f.taints, "register-with-taints", "", "taints to register the node with: key=value:Effect,…")
	fl.StringVar(&f.nodeIP, "node-ip", "", "IPv4 address to advertise for the node (default: the first global address)")
	fl.IntVar(&f.maxPods, "max-pods", agent.DefaultMaxPods, "pods this node can run (its pods capacity)")
}

// options turns the flags into agent options around the process runtime.
func (f *agentFlags) options() (agent.Options, error) {
	if f.maxPods <= 0 {
		return agent.Options{}, fmt.Errorf("--max-pods %d: must be positive", f.maxPods)
	}
	labels, err := agent.ParseLabels(f.labels)
	if err != nil {
		return agent.Options{}, err
	}
	taints, err := agent.ParseTaints(f.taints)
	if err != nil {
		return agent.Options{}, err
	}
	rt, err := process.New(process.Options{RootDir: f.rootDir + "/runtime", NodeIP: f.nodeIP, ShimCommand: shimCommand()})
	if err != nil {
		return agent.Options{}, fmt.Errorf("start process runtime: %w", err)
	}
	return agent.Options{NodeName: f.nodeName, RootDir: f.rootDir, KubeletPort: f.kubeletPort,
		NodeLabels: labels, Taints: taints, Runtime: rt, Images: rt, NodeIP: f.nodeIP, MaxPods: f.maxPods}, nil
}

func newAgentCommand() *cobra.Command {
	var f agentFlags
	var serverURL, token string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Join a node to a cluster and run its pods",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if serverURL == "" || token == "" {
				return fmt.Errorf("--server and --token are required (the token is in the server's <data-dir>/token)")
			}
			setupLogging()
			cfg, ca, err := agent.JoinConfig(serverURL, token)
			if err != nil {
				return err
			}
			opts, err := f.options()
			if err != nil {
				return err
			}
			opts.Config, opts.ClientCAPEM = cfg, ca
			a, err := agent.New(opts)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			fmt.Printf("skiff agent %s joining %s\n", f.nodeName, serverURL)
			if err := a.Run(ctx); err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		},
	}
	f.register(cmd, server.DefaultDataDir()+"/agent")
	cmd.Flags().StringVar(&serverURL, "server", "", "URL of the API server, e.g. https://10.0.0.1:6443")
	cmd.Flags().StringVar(&token, "token", "", "the node join token (the server's <data-dir>/token)")
	return cmd
}

func newShimCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "shim",
		Short:              "Internal: supervises one container of the process runtime",
		Hidden:             true,
		DisableFlagParsing: true,
		Run:                func(cmd *cobra.Command, args []string) { os.Exit(shim.ShimMain(args)) },
	}
}

func newResetCommand() *cobra.Command {
	var rootDir string
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Stop every container an agent started under --root-dir and remove its state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := process.Reset(rootDir + "/runtime"); err != nil {
				return err
			}
			return os.RemoveAll(rootDir)
		},
	}
	cmd.Flags().StringVar(&rootDir, "root-dir", server.DefaultDataDir()+"/agent", "the agent's root dir")
	return cmd
}

// shimCommand prefers the skiff-shim binary installed next to skiff: it
// starts in a millisecond and holds ~2 MB of its own per container, where a
// re-exec of the whole skiff binary (the fallback, `skiff shim`) takes ~50 ms
// of CPU and ~10 MB each. The fallback is said once, at start.
func shimCommand() []string {
	self, err := os.Executable()
	if err != nil {
		return nil
	}
	shim := filepath.Join(filepath.Dir(self), "skiff-shim")
	if st, err := os.Stat(shim); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return []string{shim}
	}
	slog.Warn("skiff-shim is not next to skiff: each container's shim will be skiff itself, slower to start and ~10 MB heavier; "+
		"build both with: go build -o DIR ./cmd/skiff ./cmd/skiff-shim", "looked for", shim)
	return nil
}
