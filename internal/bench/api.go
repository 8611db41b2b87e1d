// Package bench holds the `skiff bench` measurements.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/internal/etcd"
	"github.com/skiff-sh/skiff/internal/server"
)

// APIOptions configure `skiff bench api`.
type APIOptions struct {
	Kubeconfig  string // empty: start a server of our own
	Objects     int
	Writers     int
	Watchers    int
	WatchWrites int
	JSON        bool
	// Floor measures a minimal create handler instead of skiff's API server
	// (see floorHandler): the ceiling of the ratio on this machine.
	Floor bool
}

// APIResult is what `skiff bench api --json` prints.
type APIResult struct {
	Objects        int     `json:"objects"`
	Writers        int     `json:"writers"`
	APICreatesPerS float64 `json:"api_creates_per_s"`
	EtcdPutsPerS   float64 `json:"etcd_puts_per_s"`
	// EtcdInProcessPutsPerS is the same puts through the in-process client
	// the API server itself uses on its embedded etcd (for reference; the
	// ratio is against etcd as its clients see it, over gRPC).
	EtcdInProcessPutsPerS float64 `json:"etcd_inprocess_puts_per_s,omitempty"`
	Ratio                 float64 `json:"ratio"`
	// The process's CPU per create and per put: server, etcd and clients
	// together (0 with --kubeconfig, where the server runs elsewhere).
	APICPUMicrosPerCreate float64 `json:"api_cpu_us_per_create,omitempty"`
	EtcdCPUMicrosPerPut   float64 `json:"etcd_cpu_us_per_put,omitempty"`
	CreateP50Ms           float64 `json:"create_p50_ms"`
	CreateP99Ms           float64 `json:"create_p99_ms"`
	Watchers              int     `json:"watchers"`
	WatchDeliveryP50Ms    float64 `json:"watch_delivery_p50_ms"`
	WatchDeliveryP99Ms    float64 `json:"watch_delivery_p99_ms"`
}

func percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return float64(s[i].Microseconds()) / 1000
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// RunAPI runs the API benchmark and writes its report to out.
func RunAPI(ctx context.Context, o APIOptions, out io.Writer) (*APIResult, error) {
	if o.Floor && o.Kubeconfig != "" {
		return nil, errors.New("--floor starts its own etcd and handler; it cannot measure --kubeconfig's cluster")
	}
	var cfg *rest.Config
	var etcdClient, inProcess *clientv3.Client
	var err error
	if o.Kubeconfig == "" {
		dir, err := os.MkdirTemp("", "skiff-bench")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		var backend *etcd.Backend
		if o.Floor {
			var stop func()
			if cfg, backend, stop, err = startFloor(ctx, dir); err != nil {
				return nil, err
			}
			defer stop()
		} else {
			sctx, cancel := context.WithCancel(ctx)
			r, err := server.Start(sctx, server.Options{DataDir: dir, BindAddress: "127.0.0.1", SecurePort: 0})
			if err != nil {
				cancel()
				return nil, err
			}
			defer func() { cancel(); _ = r.Wait() }()
			if cfg, err = clientcmd.BuildConfigFromFlags("", r.Kubeconfig); err != nil {
				return nil, err
			}
			backend = r.Etcd
		}
		// The baseline is etcd as any client sees it: gRPC on its client
		// URL, as an external etcd is reached.
		grpc, err := etcd.Start(ctx, etcd.Options{Servers: backend.Endpoints})
		if err != nil {
			return nil, err
		}
		defer grpc.Close()
		etcdClient = grpc.Client
		inProcess = backend.Client
	} else if cfg, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig); err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = -1, 0 // no client-side throttling: measure the server
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	res := &APIResult{Objects: o.Objects, Writers: o.Writers, Watchers: o.Watchers}
	run := fmt.Sprintf("bench-%d", time.Now().UnixNano()%100000)
	if o.Floor {
		res.Watchers = 0 // the floor serves creates only
	} else {
		for _, ns := range []string{run, run + "-watch"} {
			if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				return nil, fmt.Errorf("create namespace: %w", err)
			}
		}
	}
	payload := strings.Repeat("x", 1024)

	// API creates from concurrent client-go writers.
	lat := make([]time.Duration, o.Objects)
	start, cpu0 := time.Now(), processCPU()
	err = parallel(ctx, o.Objects, o.Writers, func(i int) error {
		t0 := time.Now()
		_, err := client.CoreV1().ConfigMaps(run).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%05d", i)}, Data: map[string]string{"payload": payload},
		}, metav1.CreateOptions{})
		lat[i] = time.Since(t0)
		return err
	})
	apiDur, apiCPU := time.Since(start), processCPU()-cpu0
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	res.APICreatesPerS = float64(o.Objects) / apiDur.Seconds()
	res.CreateP50Ms, res.CreateP99Ms = percentile(lat, 0.50), percentile(lat, 0.99)

	// The same keys and bytes straight into the same etcd, as the baseline.
	if etcdClient != nil {
		res.APICPUMicrosPerCreate = float64(apiCPU.Microseconds()) / float64(o.Objects)
		key := "/registry/configmaps/" + run + "/cm-00000"
		stored, err := inProcess.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("read the stored bytes of %s: %w", key, err)
		}
		if len(stored.Kvs) == 0 {
			return nil, fmt.Errorf("read the stored bytes of %s: not in etcd", key)
		}
		body := string(stored.Kvs[0].Value)
		puts := func(c *clientv3.Client) (float64, time.Duration, error) {
			defer c.Delete(ctx, "/bench/", clientv3.WithPrefix())
			start, cpu0 := time.Now(), processCPU()
			err := parallel(ctx, o.Objects, o.Writers, func(i int) error {
				_, err := c.Put(ctx, fmt.Sprintf("/bench/registry/configmaps/%s/cm-%05d", run, i), body)
				return err
			})
			if err != nil {
				return 0, 0, fmt.Errorf("etcd put: %w", err)
			}
			return float64(o.Objects) / time.Since(start).Seconds(), processCPU() - cpu0, nil
		}
		var cpu time.Duration
		if res.EtcdPutsPerS, cpu, err = puts(etcdClient); err != nil {
			return nil, err
		}
		res.EtcdCPUMicrosPerPut = float64(cpu.Microseconds()) / float64(o.Objects)
		res.Ratio = res.APICreatesPerS / res.EtcdPutsPerS
		if res.EtcdInProcessPutsPerS, _, err = puts(inProcess); err != nil {
			return nil, err
		}
	}

	if !o.Floor {
		if err := watchFanout(ctx, client, run+"-watch", o, res); err != nil {
			return nil, err
		}
	}
	if o.JSON {
		enc := json.NewEncoder(out)
		return res, enc.Encode(res)
	}
	fmt.Fprintf(out, "%-24s %12s\n", "METRIC", "VALUE")
	for _, row := range []struct {
		k string
		v float64
	}{
		{"api_creates_per_s", res.APICreatesPerS}, {"etcd_puts_per_s", res.EtcdPutsPerS}, {"ratio", res.Ratio},
		{"etcd_inprocess_puts_per_s", res.EtcdInProcessPutsPerS},
		{"api_cpu_us_per_create", res.APICPUMicrosPerCreate}, {"etcd_cpu_us_per_put", res.EtcdCPUMicrosPerPut},
		{"create_p50_ms", res.CreateP50Ms}, {"create_p99_ms", res.CreateP99Ms}, {"watchers", float64(res.Watchers)},
		{"watch_delivery_p50_ms", res.WatchDeliveryP50Ms}, {"watch_delivery_p99_ms", res.WatchDeliveryP99Ms},
	} {
		fmt.Fprintf(out, "%-24s %12.2f\n", row.k, row.v)
	}
	return res, nil
}

// watchFanout opens o.Watchers watches and measures, per write, the time
// until every watcher has the event.
func watchFanout(ctx context.Context, client kubernetes.Interface, ns string, o APIOptions, res *APIResult) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	list, err := client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	type arrival struct {
		name string
		at   time.Time
	}
	arrivals := make(chan arrival, o.Watchers*4)
	var wg sync.WaitGroup
	for i := 0; i < o.Watchers; i++ {
		w, err := client.CoreV1().ConfigMaps(ns).Watch(wctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
		if err != nil {
			return fmt.Errorf("watch %d: %w", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Stop()
			for ev := range w.ResultChan() {
				if cm, ok := ev.Object.(*corev1.ConfigMap); ok {
					select {
					case arrivals <- arrival{cm.Name, time.Now()}:
					case <-wctx.Done():
						return
					}
				}
			}
		}()
	}
	var delivery []time.Duration
	for i := 0; i < o.WatchWrites; i++ {
		name := fmt.Sprintf("w-%04d", i)
		t0 := time.Now()
		if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			return err
		}
		got := 0
		timeout := time.After(30 * time.Second)
		for got < o.Watchers {
			select {
			case a := <-arrivals:
				if a.name == name {
					got++
					if got == o.Watchers {
						delivery = append(delivery, a.at.Sub(t0))
					}
				}
			case <-timeout:
				return fmt.Errorf("write %s reached %d of %d watchers in 30s", name, got, o.Watchers)
			}
		}
	}
	cancel()
	wg.Wait()
	res.WatchDeliveryP50Ms, res.WatchDeliveryP99Ms = percentile(delivery, 0.50), percentile(delivery, 0.99)
	return nil
}
