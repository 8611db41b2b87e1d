package main

import (
	"context"
	"fmt"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/controllermanager"
	"github.com/skiff-sh/skiff/internal/etcd"
	"github.com/skiff-sh/skiff/internal/server"
)

func newServerCommand() *cobra.Command {
	var o server.Options
	var etcdServers string
	var af agentFlags
	var disableAgent bool
	var cm controllermanager.Options
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the API server (with embedded etcd unless --etcd-servers is given)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.EtcdServers = etcd.SplitServers(etcdServers)
			if cm.NodeMonitorGracePeriod <= 0 {
				return fmt.Errorf("--node-monitor-grace-period %s: must be positive", cm.NodeMonitorGracePeriod)
			}
			o.Controllers = cm.Start
			if !disableAgent {
				if af.rootDir == "" {
					af.rootDir = filepath.Join(o.DataDir, "agent")
				}
				ao, err := af.options()
				if err != nil {
					return err
				}
				o.Agent = &ao
			}
			setupLogging()
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			start := time.Now()
			r, err := server.Start(ctx, o)
			if err != nil {
				return err
			}
			fmt.Printf("skiff server ready at %s in %s; kubeconfig: %s\n", r.URL, time.Since(start).Round(time.Millisecond), r.Kubeconfig)
			return r.Wait()
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", server.DefaultDataDir(), "state, certificates and kubeconfig")
	f.StringVar(&o.BindAddress, "bind-address", "0.0.0.0", "address to serve the API on")
	f.IntVar(&o.SecurePort, "secure-port", 6443, "HTTPS port of the API")
	f.StringVar(&o.WriteKubeconfig, "write-kubeconfig", "", "where to write the admin kubeconfig (default <data-dir>/kubeconfig.yaml)")
	f.StringSliceVar(&o.TLSSANs, "tls-san", nil, "extra names or IPs for the serving certificate (repeatable)")
	f.StringVar(&etcdServers, "etcd-servers", "", "comma-separated URLs of an external etcd cluster (empty: embedded etcd in <data-dir>/etcd)")
	f.StringVar(&o.TokenAuthFile, "token-auth-file", "", "static bearer tokens, CSV: token,user,uid[,\"group1,group2\"]")
	f.StringVar(&o.ServiceCIDR, "service-cluster-ip-range", "10.43.0.0/16", "CIDR for Service cluster IPs")
	f.DurationVar(&o.CompactInterval, "etcd-compaction-interval", 5*time.Minute, "how often old etcd revisions are compacted (0 disables)")
	f.IntVar(&o.MaxRequestsInFlight, "max-requests-inflight", 400, "concurrent non-mutating requests before 429")
	f.IntVar(&o.MaxMutatingRequestsInFlight, "max-mutating-requests-inflight", 200, "concurrent mutating requests before 429")
	f.BoolVar(&disableAgent, "disable-agent", false, "do not run a node agent in this process")
	f.DurationVar(&o.EventTTL, "event-ttl", time.Hour, "how long events are kept after their last update")
	f.DurationVar(&o.MetricResolution, "metric-resolution", 15*time.Second, "how often agents are scraped for the metrics API (kubectl top)")
	f.Int64Var(&o.DefaultNotReadyTolerationSeconds, "default-not-ready-toleration-seconds", 300, "tolerationSeconds of the not-ready:NoExecute toleration added to every pod")
	f.Int64Var(&o.DefaultUnreachableTolerationSeconds, "default-unreachable-toleration-seconds", 300, "tolerationSeconds of the unreachable:NoExecute toleration added to every pod")
	f.DurationVar(&cm.NodeMonitorGracePeriod, "node-monitor-grace-period", 50*time.Second, "how long a node may go without renewing its lease or posting status before it is marked Unknown and tainted unreachable")
	af.register(cmd, "")
	return cmd
}
