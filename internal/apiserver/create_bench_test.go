package apiserver_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/testenv"
)

// BenchmarkCreateConfigMap is the create path of `skiff bench api` as a Go
// benchmark (less noisy, and -cpuprofile/-blockprofile/-mutexprofile see only
// it): 1 KiB ConfigMaps from 32 concurrent client-go writers on one client.
//
//	go test -run '^$' -bench CreateConfigMap -benchtime 5000x ./internal/apiserver/
func BenchmarkCreateConfigMap(b *testing.B) {
	client := benchClient(b)
	ctx := context.Background()
	payload := strings.Repeat("x", 1024)
	var next atomic.Int64
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0))) // 32 writers
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	defer func() {
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
		reportServerLatency(b, client)
	}()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			_, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%06d", i)}, Data: map[string]string{"payload": payload},
			}, metav1.CreateOptions{})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchClient starts a server and returns a client without client-side
// throttling, so the benchmark measures the server.
func benchClient(b *testing.B) kubernetes.Interface {
	env := testenv.Start(b)
	cfg := *env.Config
	cfg.QPS, cfg.Burst = -1, 0
	return kubernetes.NewForConfigOrDie(&cfg)
}

// reportServerLatency reports the server's mean request and etcd create
// times, to tell time in the handler from time on the way to it.
func reportServerLatency(b *testing.B, client kubernetes.Interface) {
	raw, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Logf("metrics: %v", err)
		return
	}
	mean := func(prefix string) float64 {
		var sum, count float64
		for _, line := range strings.Split(string(raw), "\n") {
			if !strings.HasPrefix(line, prefix) {
				continue
			}
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			if strings.Contains(line, "_sum{") {
				sum += v
			} else if strings.Contains(line, "_count{") {
				count += v
			}
		}
		return sum / max(count, 1) * 1e6
	}
	b.ReportMetric(mean(`apiserver_request_duration_seconds`), "server-us/req")
	b.ReportMetric(mean(`etcd_request_duration_seconds`), "etcd-us/op")
}

// cpuTime is the process's user+system CPU time: on a shared machine it is a
// steadier figure than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkListConfigMaps lists 10,000 ConfigMaps without a resourceVersion
// (a consistent read), as `kubectl get` and informers without WatchList do.
func BenchmarkListConfigMaps(b *testing.B) {
	client := benchClient(b)
	ctx := context.Background()
	payload := strings.Repeat("x", 1024)
	var next atomic.Int64
	errs := make(chan error, 32)
	for range 32 {
		go func() {
			for {
				i := next.Add(1)
				if i > 10000 {
					errs <- nil
					return
				}
				if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%06d", i)}, Data: map[string]string{"payload": payload},
				}, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 32 {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	for _, limit := range []int64{0, 500} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			for b.Loop() {
				n := 0
				opts := metav1.ListOptions{Limit: limit}
				for {
					l, err := client.CoreV1().ConfigMaps("default").List(ctx, opts)
					if err != nil {
						b.Fatal(err)
					}
					n += len(l.Items)
					if l.Continue == "" {
						break
					}
					opts.Continue = l.Continue
				}
				if n != 10000 {
					b.Fatalf("listed %d, want 10000", n)
				}
			}
		})
	}
}

// BenchmarkUpdateConfigMap is 32 writers each updating its own ConfigMap
// (no conflicts), as agents and controllers write status.
func BenchmarkUpdateConfigMap(b *testing.B) {
	client := benchClient(b)
	ctx := context.Background()
	// 32 writers, or one per goroutine RunParallel starts if that is more.
	parallelism := max(1, 32/runtime.GOMAXPROCS(0))
	writers := parallelism * runtime.GOMAXPROCS(0)
	cms := make(chan *corev1.ConfigMap, writers)
	for i := range writers {
		cm, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%02d", i)}, Data: map[string]string{"payload": strings.Repeat("x", 1024)},
		}, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		cms <- cm
	}
	b.SetParallelism(parallelism)
	cpu0 := cpuTime()
	b.ResetTimer()
	defer func() {
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
		reportServerLatency(b, client)
	}()
	b.RunParallel(func(pb *testing.PB) {
		cm := <-cms
		n := 0
		for pb.Next() {
			n++
			cm.Data["n"] = fmt.Sprint(n)
			out, err := client.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{})
			if err != nil {
				b.Error(err)
				return
			}
			cm = out
		}
	})
}
