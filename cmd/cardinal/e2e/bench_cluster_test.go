package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkCluster measures what forwarding costs (issue 18, docs/design.md §6): the load
// generator's steady-state scenario (100 counter rules, 1M input series) sent to one member
// of a cluster of 1 (the baseline), 2 and 3, whose members own and aggregate their share of
// the outputs and receive the rest of the inputs forwarded. Reported per member count: the
// extra CPU per forwarded sample, the sender's and the owners' together
// ((CPU of all members − baseline CPU per sample × samples) / samples forwarded), the bytes
// on the wire per forwarded sample (snappy bodies), the p99 acknowledgement latency at the
// receiving member at 300k samples/s, and each member's CPU and input series.
func BenchmarkCluster(b *testing.B) {
	var rules strings.Builder
	for m := range 100 {
		fmt.Fprintf(&rules, "  - metric_name: loadgen_counter_%d_total\n    type: counter\n    drop_labels: [pod, instance]\n", m)
	}
	shape := []string{"--metrics=100", "--series=10000", "--groups=100", "--samples-per-request=2000", "--concurrency=4"}
	baseline := 0.0
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			for b.Loop() {
				addrs := make([]string, n)
				for i := range addrs {
					addrs[i] = fmt.Sprintf("127.0.0.1:%d", freePort(b))
				}
				cards := make([]*cardinalServer, n)
				for i := range cards {
					cfg := "aggregator:\n  flush_interval: 15s\n  flush_delay: 10s\ndownstream:\n  file: {path: /dev/null}\n" + exploreOff
					if n > 1 {
						// join_after 1s: members started together admit each other only after
						// it (one that finds a peer's ring first waits outside it), and the
						// default, 30s, is as long as the wait for the cluster to form.
						cfg += fmt.Sprintf("cluster:\n  name: bench-%d\n  peers: [%s]\n  refresh_interval: 1s\n  probe_timeout: 1s\n  join_after: 1s\n", i, strings.Join(addrs, ", "))
					}
					cfg += "rules:\n" + rules.String()
					path := filepath.Join(b.TempDir(), "cardinal.yaml")
					if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
						b.Fatal(err)
					}
					cards[i] = startCardinalAt(b, addrs[i], path)
				}
				for _, c := range cards {
					eventually(b, 30*time.Second, "the cluster forms", func() (bool, error) {
						if n == 1 {
							return true, nil
						}
						v, err := scrapeMax(c.URL, "cardinal_cluster_members")
						return v == float64(n), fmt.Errorf("%v members, want %d (%v)", v, n, err)
					})
				}
				url := cards[0].WriteURL
				runLoadgen(b, append(shape, "--url="+url, "--history=13m", "--requests=300")...)
				// The timed phase is live at a fixed rate: a backfill as fast as one member
				// ingests outruns the queues to its peers on 2 shared cores, and they answer
				// 503 (back-pressure), which a throughput run cannot measure through.
				before := make([]float64, n)
				for i, c := range cards {
					before[i] = processCPU(b, c.PID())
				}
				fwdBefore := sumMetric(b, cards[0].URL, "cardinal_cluster_forwarded_samples_total")
				wire := 0.0 // bytes the peers received in the live phase
				for _, c := range cards[1:] {
					wire -= sumMetric(b, c.URL, "cardinal_cluster_received_bytes_total")
				}
				live := runLoadgen(b, append(shape, "--url="+url, "--rate=300000", "--duration=30s")...)
				if live.Samples != live.SamplesAttempted {
					b.Fatalf("300k/s: %d of %d samples acknowledged, errors %v", live.Samples, live.SamplesAttempted, live.Errors)
				}
				var cpu float64
				var per []string
				used := make([]float64, n) // CPU seconds of each member in the live phase
				for i, c := range cards {
					used[i] = processCPU(b, c.PID()) - before[i]
					cpu += used[i]
					per = append(per, fmt.Sprintf("member %d: %.1f CPU s, %.0f input series", i, used[i], sumMetric(b, c.URL, "cardinal_aggregator_input_series")))
				}
				perSample := cpu / float64(live.Samples) * 1e6
				b.ReportMetric(perSample, "cpu-us/sample")
				b.ReportMetric(live.Latency.P99*1000, "p99-ms@300k/s")
				b.Logf("members=%d at 300k samples/s to member 0: %.3f CPU µs/sample over all members, p50 %.1f ms, p99 %.1f ms; %s",
					n, perSample, live.Latency.P50*1000, live.Latency.P99*1000, strings.Join(per, "; "))
				if n == 1 {
					baseline = perSample
				} else {
					forwarded := sumMetric(b, cards[0].URL, "cardinal_cluster_forwarded_samples_total") - fwdBefore
					for _, c := range cards[1:] {
						wire += sumMetric(b, c.URL, "cardinal_cluster_received_bytes_total")
					}
					if forwarded <= 0 {
						b.Fatal("nothing was forwarded")
					}
					extra := (cpu*1e6 - baseline*float64(live.Samples)) / forwarded
					b.ReportMetric(extra, "cpu-us/forwarded-sample")
					b.ReportMetric(wire/forwarded, "wire-bytes/forwarded-sample")
					// Each side on its own: the sender's CPU per sample its agent sent, and
					// the owners' per sample forwarded to them (aggregating it included).
					b.ReportMetric(used[0]*1e6/float64(live.Samples), "sender-cpu-us/sample")
					b.ReportMetric((cpu-used[0])*1e6/forwarded, "owner-cpu-us/forwarded-sample")
					b.Logf("members=%d: %.0f of %d samples forwarded (%.0f%%): %.3f extra CPU µs per forwarded sample (sender and owner); %.0f bytes received by peers",
						n, forwarded, live.Samples, 100*forwarded/float64(live.Samples), extra, wire)
				}
				for _, c := range cards {
					c.Stop()
				}
			}
		})
	}
}

// processCPU returns the user and system CPU seconds process pid has used.
func processCPU(tb testing.TB, pid int) float64 {
	tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// The fields after the command name (which may hold spaces) in parentheses.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// sumMetric sums every sample of a metric family on a /metrics page.
func sumMetric(tb testing.TB, baseURL, name string) float64 {
	tb.Helper()
	resp, err := http.Get(baseURL + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == name || !strings.HasPrefix(line, name) || (line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}
