package e2e

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// clusterNativeMetric is the cluster's native-histogram counter: a histogram rule dropping
// pod, so one output per job.
const clusterNativeMetric = "crash_latency_seconds"

// TestCluster_native_histograms_change_owner_without_a_reset has agents on two nodes write
// native histograms (latencies of 24 pods of 12 jobs, in three schemas) to their node's member; a
// third member joins, so the two hand it the state of the outputs it gains, and then leaves,
// handing them back. Through both handoffs every output's observation count, as Prometheus
// stores it, never goes down (a lost handoff restarts it from zero), ends at exactly what
// the pods observed after their first scrape (a handoff merged twice would add it again),
// and each of its samples comes from one member.
func TestCluster_native_histograms_change_owner_without_a_reset(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: -short: not starting Prometheus and cardinal")
	}
	prom := startPrometheus(t, prometheusOptions{ExtraFlags: []string{nativeHistFlag}})
	members, peers := startCluster(t, prom.WriteURL, 3, 2)
	agents, joiner := members[:2], members[2]

	snd := startNativeSender(t, agents)
	time.Sleep(12 * time.Second)

	joiner.start(t)
	for _, m := range members {
		waitMembers(t, m, len(members))
	}
	eventually(t, 30*time.Second, joiner.name+" merges native state it gained", func() (bool, error) {
		m := joiner.card.selfMetrics()
		ok := strings.Contains(m, `cardinal_cluster_handoffs_received_total{peer="node-0",result="ok"}`) ||
			strings.Contains(m, `cardinal_cluster_handoffs_received_total{peer="node-1",result="ok"}`)
		return ok, fmt.Errorf("no handoff received yet")
	})
	time.Sleep(12 * time.Second)

	peers.write(t, agents)
	for _, m := range agents {
		waitMembers(t, m, len(agents))
	}
	eventually(t, 30*time.Second, joiner.name+" leaves", func() (bool, error) {
		m := joiner.card.selfMetrics()
		// selfMetrics leaves out the metrics at 0.
		return !strings.Contains(m, "cardinal_cluster_shards_owned "), fmt.Errorf("%s still owns shards: %s", joiner.name,
			strings.Join(regexp.MustCompile(`(?m)^cardinal_cluster_shards_owned.*$`).FindAllString(m, -1), "; "))
	})
	time.Sleep(8 * time.Second)
	if code := joiner.card.Stop(); code != 0 {
		t.Errorf("%s exited with %d after SIGTERM, want 0", joiner.name, code)
	}
	time.Sleep(5 * time.Second)
	want, last := snd.stop(t)

	// Wait until every member has written the window of the last scrape.
	lastWindow := last.Truncate(crashInterval).Add(crashInterval).UnixMilli()
	eventually(t, 30*time.Second, "the last window at Prometheus", func() (bool, error) {
		for job := range want {
			if newest(members, job) < lastWindow {
				return false, fmt.Errorf("job %s: newest output at %s, want %s", job, fmtMs(newest(members, job)), fmtMs(lastWindow))
			}
		}
		return true, nil
	})

	for _, m := range members {
		m.proxy.mu.Lock()
		for _, b := range m.proxy.bad {
			t.Errorf("%s: Prometheus refused: %s", m.name, b)
		}
		m.proxy.mu.Unlock()
	}
	for job, total := range want {
		counts, writers := histogramOutput(members, job)
		var ts []int64
		for t := range counts {
			ts = append(ts, t)
		}
		slices.Sort(ts)
		if len(ts) < 8 {
			t.Fatalf("job %s: %d output samples, want one per window", job, len(ts))
		}
		for i, at := range ts {
			if len(writers[at]) != 1 {
				t.Errorf("job %s at %s: written by %v, want one member", job, fmtMs(at), writers[at])
			}
			if i > 0 && counts[at] < counts[ts[i-1]] {
				t.Errorf("job %s: count went down from %v at %s to %v at %s (a reset)", job, counts[ts[i-1]], fmtMs(ts[i-1]), counts[at], fmtMs(at))
			}
		}
		if got := counts[ts[len(ts)-1]]; got != total {
			t.Errorf("job %s: final count %v, want %v (observed after each pod's first scrape)", job, got, total)
		}
		var seq []string
		for _, at := range ts {
			seq = append(seq, strings.Join(writers[at], "+"))
		}
		t.Logf("job %s: final count %v; windows by %s", job, counts[ts[len(ts)-1]], strings.Join(seq, " "))
	}
	moved := 0
	for job := range want {
		if _, writers := histogramOutput(members, job); len(distinctWriters(writers)) > 1 {
			moved++
		}
	}
	if moved == 0 {
		t.Error("no output changed owner: the test does not exercise a handoff")
	}
}

// histogramOutput gathers the native histogram counts of job's output from every member's
// proxy, and which members wrote each timestamp.
func histogramOutput(members []*clusterMember, job string) (map[int64]float64, map[int64][]string) {
	counts, writers := map[int64]float64{}, map[int64][]string{}
	for _, m := range members {
		m.proxy.mu.Lock()
		for key, byT := range m.proxy.histCounts {
			if !strings.Contains(key, clusterNativeMetric) || !strings.Contains(key, `job="`+job+`"`) {
				continue
			}
			for at, c := range byT {
				counts[at] = c
				writers[at] = append(writers[at], m.name)
			}
		}
		m.proxy.mu.Unlock()
	}
	return counts, writers
}

// newest is the newest timestamp of job's native output at any member's proxy.
func newest(members []*clusterMember, job string) int64 {
	counts, _ := histogramOutput(members, job)
	var n int64
	for at := range counts {
		n = max(n, at)
	}
	return n
}

func distinctWriters(writers map[int64][]string) []string {
	var all []string
	for _, ws := range writers {
		for _, w := range ws {
			if !slices.Contains(all, w) {
				all = append(all, w)
			}
		}
	}
	return all
}

// nativeSender is the agents of the native cluster test: every second it scrapes its pods'
// latency histograms and writes each pod's to the member of its node.
type nativeSender struct {
	quit, done chan struct{}
	mu         sync.Mutex
	err        error
	first      map[string]float64 // pod -> count at its first scrape (a baseline)
	lastCount  map[string]float64
	jobOf      map[string]string
	last       time.Time
}

func startNativeSender(t *testing.T, agents []*clusterMember) *nativeSender {
	t.Helper()
	// Twelve jobs of two pods, one on each node: a job's output has inputs on both members,
	// and of twelve outputs some move to a third member and back.
	var pods []*nativePod
	for i := range 24 {
		job := fmt.Sprintf("job%d", i/2)
		pods = append(pods, &nativePod{job: job, name: fmt.Sprintf("%s-%d", job, i%2), schema: int32(i % 3),
			rng: rand.New(rand.NewPCG(uint64(i), 7)), buckets: map[int32]uint64{}})
	}
	s := &nativeSender{quit: make(chan struct{}), done: make(chan struct{}),
		first: map[string]float64{}, lastCount: map[string]float64{}, jobOf: map[string]string{}}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-s.quit:
				return
			case now := <-tick.C:
				ms := now.UnixMilli()
				parts := make([][]prompb.TimeSeries, len(agents))
				for i, p := range pods {
					for range 5 + i%7 {
						p.observe(math.Exp(-3 + p.rng.NormFloat64()))
					}
					h := prompb.FromIntHistogram(ms, p.histogram())
					parts[i%len(agents)] = append(parts[i%len(agents)], prompb.TimeSeries{
						Labels:     labelSet(clusterNativeMetric, "job", p.job, "pod", p.name),
						Histograms: []prompb.Histogram{h},
					})
				}
				for node, part := range parts {
					code, body, err := postRW(agents[node].card.WriteURL, part)
					for try := 0; err == nil && code == http.StatusServiceUnavailable && try < 20; try++ {
						time.Sleep(100 * time.Millisecond) // back-pressure: the agent keeps the data
						code, body, err = postRW(agents[node].card.WriteURL, part)
					}
					if err != nil || code/100 != 2 {
						s.mu.Lock()
						s.err = fmt.Errorf("write to %s: status %d %s, %v", agents[node].name, code, body, err)
						s.mu.Unlock()
						return
					}
				}
				s.mu.Lock()
				for _, p := range pods {
					if _, ok := s.first[p.name]; !ok {
						s.first[p.name] = float64(p.count)
					}
					s.lastCount[p.name], s.jobOf[p.name] = float64(p.count), p.job
				}
				s.last = now
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// stop stops the sender and returns per job what its pods observed after their first
// scrape, and when the last scrape was.
func (s *nativeSender) stop(t *testing.T) (map[string]float64, time.Time) {
	t.Helper()
	close(s.quit)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		t.Fatalf("native sender: %v", s.err)
	}
	want := map[string]float64{}
	for pod, c := range s.lastCount {
		want[s.jobOf[pod]] += c - s.first[pod]
	}
	return want, s.last
}
