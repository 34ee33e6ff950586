package hashring

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/remotewrite"
	"github.com/cardinal-proxy/cardinal/rules"
)

// appendFunc adapts a function to remotewrite.Appender.
type appendFunc func(ctx context.Context, req *prompb.WriteRequest)

func (f appendFunc) Append(ctx context.Context, req *prompb.WriteRequest, _ []byte) error {
	f(ctx, req)
	return nil
}

// BenchmarkForwardPath is the CPU that forwarding itself costs, on one goroutine, without
// the network and without other processes competing for the cores (which BenchmarkCluster
// in the e2e package measures, with them). The scenario is BenchmarkPipeline's (100 counter
// rules, 1M input series in 2000-sample requests). Each iteration is one round of every
// series, received two ways: by one member alone (a real remotewrite.Handler decoding each
// body into an Aggregator), and by the sender and the owners of a ring of 2 or 3 members (the
// sender's handler routes each request, aggregating its share and copying the rest into its
// Outbox; each owner's chunk is snappy-encoded as a peer queue does and served to the
// owner's handler, behind the Forwarder's Receiver, with the forwarding headers). extra-ns
// per forwarded sample is the cluster's time minus the one member's, over the samples
// forwarded: the sender's placement and copying plus the owners' decoding, without HTTP and
// TCP. The sender places every series and forwards half of them with 2 members, two thirds
// with 3. sender-ns/sample and owner-ns/forwarded-sample split the cluster's time between
// the two sides.
func BenchmarkForwardPath(b *testing.B) {
	for _, n := range []int{2, 3} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) { forwardPath(b, n) })
	}
}

// forwardPath is BenchmarkForwardPath with n members.
func forwardPath(b *testing.B, n int) {
	const metrics, pods, perReq = 100, 10000, 2000
	var rs []*rules.Rule
	for m := range metrics {
		name := fmt.Sprintf("loadgen_counter_%d_total", m)
		rs = append(rs, &rules.Rule{
			Name: name, Type: rules.Counter, MetricNames: []string{name}, BaseName: name,
			Without: []string{"instance", "pod"}, Interval: 15 * time.Second, FlushDelay: 10 * time.Second,
			Staleness: 5 * time.Minute, Fingerprint: uint64(m + 1),
		})
	}
	all := make([]prompb.TimeSeries, 0, metrics*pods)
	for p := range pods {
		for _, r := range rs {
			all = append(all, prompb.TimeSeries{
				Labels: []prompb.Label{
					{Name: rules.MetricNameLabel, Value: r.Name},
					{Name: "group", Value: fmt.Sprintf("g%d", p%100)},
					{Name: "instance", Value: fmt.Sprintf("instance-%07d", p%100)},
					{Name: "job", Value: "loadgen"},
					{Name: "pod", Value: fmt.Sprintf("pod-%012d", p)},
				},
				Samples: []prompb.Sample{{}},
			})
		}
	}
	var now time.Time
	clock := func() time.Time { return now }
	newAgg := func() *aggregator.Aggregator {
		a := aggregator.New(aggregator.Options{Output: discard{}, Now: clock})
		if err := a.SetRules(rs); err != nil {
			b.Fatal(err)
		}
		return a
	}
	handler := func(app remotewrite.Appender) http.Handler {
		return remotewrite.NewHandler(app, remotewrite.HandlerOptions{Limits: remotewrite.DefaultLimits()}, nil, nil)
	}
	ts := int64(1_700_000_000_000)
	var enc remotewrite.Encoder
	bodies := make([][]byte, (len(all)+perReq-1)/perReq)
	encodeRound := func() {
		ts += 15000
		now = time.UnixMilli(ts + 11000)
		for i := 0; i < len(all); i += perReq {
			req := all[i:min(i+perReq, len(all))]
			for j := range req {
				req[j].Samples[0] = prompb.Sample{Timestamp: ts, Value: float64(ts/1000 + int64(j))}
			}
			body, err := enc.Encode(req)
			if err != nil {
				b.Fatal(err)
			}
			bodies[i/perReq] = append(bodies[i/perReq][:0], body...)
		}
	}
	post := func(h http.Handler, body []byte, header http.Header) {
		// Built, not parsed as httptest.NewRequest does: its fresh 4 KiB reader per request
		// cost more than the handlers' own work here, and more often for a cluster.
		req, err := http.NewRequest(http.MethodPost, "http://cardinal"+remotewrite.WritePath, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		for k, v := range header {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code/100 != 2 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	// One aggregator alone.
	alone := newAgg()
	aloneH := handler(appendFunc(func(_ context.Context, req *prompb.WriteRequest) { alone.Ingest(req.Timeseries) }))
	aloneRound := func() {
		for _, body := range bodies {
			post(aloneH, body, nil)
		}
		alone.Flush(false)
	}

	// A sender that agents write to, and the owners of what it forwards.
	var members []Member
	for i := range n {
		members = append(members, Member{Name: string(rune('a' + i)), Addr: fmt.Sprintf("127.0.0.1:%d", i+1)})
	}
	fwds := make([]*Forwarder, n)
	aggs := make([]*aggregator.Aggregator, n)
	for i, m := range members {
		// A handoff timeout of a nanosecond: a member that has just started holds the
		// outputs it owns for a handoff that may come from the others, which would keep
		// every window open for the whole benchmark.
		f, err := NewForwarder(m.Name, DefaultForwardConfig(), time.Nanosecond, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		f.SetMembers(members)
		b.Cleanup(func() { _ = f.Shutdown(context.Background()) })
		fwds[i], aggs[i] = f, newAgg()
		aggs[i].SetOwnership(f)
	}
	var forwarded int // samples received by the owners
	owners := make([]http.Handler, n)
	for o := 1; o < n; o++ {
		owners[o] = fwds[o].Receiver(handler(appendFunc(func(ctx context.Context, req *prompb.WriteRequest) {
			for i := range req.Timeseries {
				forwarded += len(req.Timeseries[i].Samples)
			}
			fi, _ := ForwardInfoFrom(ctx)
			v, _ := fwds[o].SenderView(fi)
			aggs[o].IngestRoute(req.Timeseries, aggregator.Route{Router: v, Forwarded: true, SenderRules: fi.Rules})
		})))
	}
	header := forwardHeader("a", fwds[0].Ring())
	fwdBodies := make([][]byte, n) // the peer queues' body buffers, reused as they reuse them
	sender := handler(appendFunc(func(ctx context.Context, req *prompb.WriteRequest) {
		ob := fwds[0].Outbox()
		ob.UseRaw(remotewrite.RawSeries(ctx))
		rules := aggs[0].IngestRoute(req.Timeseries, aggregator.Route{Router: ob, Forward: ob.Forward})
		header.Set(HeaderRules, strconv.FormatUint(rules, 16))
		for o := 1; o < n; o++ {
			fwdBodies[o] = fwdBodies[o][:0]
			if chunk := ob.to[o]; len(chunk) > 0 {
				fwdBodies[o] = snappy.Encode(fwdBodies[o][:cap(fwdBodies[o])], chunk)
				ob.pool.put(chunk)
			}
		}
	}))
	var tOwners time.Duration // of the cluster's time, the owners' handlers'
	clusterRound := func() {
		for _, body := range bodies {
			post(sender, body, nil)
			start := time.Now()
			for o := 1; o < n; o++ {
				if len(fwdBodies[o]) > 0 {
					post(owners[o], fwdBodies[o], header)
				}
			}
			tOwners += time.Since(start)
		}
		for _, a := range aggs {
			a.Flush(false)
		}
	}

	// Every series once first: the rounds measured update inputs, as in steady state. Then
	// each iteration runs one round both ways, alternating which goes first, so that the
	// machine's drift falls on both alike.
	encodeRound()
	aloneRound()
	clusterRound()
	forwarded, tOwners = 0, 0
	var tAlone, tCluster time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		encodeRound()
		b.StartTimer()
		start := time.Now()
		if i%2 == 0 {
			aloneRound()
			mid := time.Now()
			clusterRound()
			tAlone, tCluster = tAlone+mid.Sub(start), tCluster+time.Since(mid)
		} else {
			clusterRound()
			mid := time.Now()
			aloneRound()
			tCluster, tAlone = tCluster+mid.Sub(start), tAlone+time.Since(mid)
		}
	}
	samples := float64(b.N * len(all))
	b.ReportMetric(float64(tAlone.Nanoseconds())/samples, "alone-ns/sample")
	b.ReportMetric(float64(tCluster.Nanoseconds())/samples, "cluster-ns/sample")
	b.ReportMetric(float64(forwarded)/samples, "forwarded/sample")
	b.ReportMetric(float64((tCluster-tAlone).Nanoseconds())/float64(forwarded), "extra-ns/forwarded-sample")
	// Each side on its own: the sender's time (its handler and the members' flushes) per
	// sample it received, and the owners' time per sample forwarded to them, which
	// includes aggregating it, as the one member does.
	b.ReportMetric(float64((tCluster-tOwners).Nanoseconds())/samples, "sender-ns/sample")
	b.ReportMetric(float64(tOwners.Nanoseconds())/float64(forwarded), "owner-ns/forwarded-sample")
}

// discard is a sink that drops what it is given.
type discard struct{}

func (discard) Send([]prompb.TimeSeries) {}
