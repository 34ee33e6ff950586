package hashring

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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
// rules, 1M input series in 2000-sample requests). "alone" is one member's receive path: a
// real remotewrite.Handler decoding each body into an Aggregator. "members=2" is the sender
// and the owner of a two-member ring: the sender's handler routes each request, aggregating
// its share and encoding the rest into its Outbox; each owner's chunk is snappy-encoded as a
// peer queue does and served to the owner's handler, behind the Forwarder's Receiver, with
// the forwarding headers. extra-ns/forwarded-sample is members=2's time per round minus
// alone's, over the samples forwarded: the sender's routing and encoding plus the owner's
// decoding and placement, without HTTP and TCP.
func BenchmarkForwardPath(b *testing.B) {
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
		req := httptest.NewRequest(http.MethodPost, remotewrite.WritePath, bytes.NewReader(body))
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
	run := func(b *testing.B, round func()) {
		encodeRound()
		round() // every series once: the rounds measured update inputs, as in steady state
		for b.Loop() {
			b.StopTimer()
			encodeRound()
			b.StartTimer()
			round()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(all)), "ns/sample")
	}

	var alone float64 // ns per round
	b.Run("alone", func(b *testing.B) {
		a := newAgg()
		h := handler(appendFunc(func(_ context.Context, req *prompb.WriteRequest) { a.Ingest(req.Timeseries) }))
		run(b, func() {
			for _, body := range bodies {
				post(h, body, nil)
			}
			a.Flush(false)
		})
		alone = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})

	b.Run("members=2", func(b *testing.B) {
		members := []Member{{Name: "a", Addr: "127.0.0.1:1"}, {Name: "b", Addr: "127.0.0.1:2"}}
		var fwds [2]*Forwarder
		var aggs [2]*aggregator.Aggregator
		for i, m := range members {
			f, err := NewForwarder(m.Name, DefaultForwardConfig(), time.Minute, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			f.SetMembers(members)
			b.Cleanup(func() { _ = f.Shutdown(context.Background()) })
			fwds[i], aggs[i] = f, newAgg()
			aggs[i].SetOwnership(f)
		}
		var forwarded int // samples received by the owner
		owner := fwds[1].Receiver(handler(appendFunc(func(ctx context.Context, req *prompb.WriteRequest) {
			for i := range req.Timeseries {
				forwarded += len(req.Timeseries[i].Samples)
			}
			fi, _ := ForwardInfoFrom(ctx)
			v, _ := fwds[1].SenderView(fi)
			aggs[1].IngestRoute(req.Timeseries, aggregator.Route{Router: v, Forwarded: true})
		})))
		header := forwardHeader("a", fwds[0].Ring())
		var fwdBody []byte // the peer queue's body buffer, reused as it reuses it
		sender := handler(appendFunc(func(ctx context.Context, req *prompb.WriteRequest) {
			ob := fwds[0].Outbox()
			ob.UseRaw(remotewrite.RawSeries(ctx))
			aggs[0].IngestRoute(req.Timeseries, aggregator.Route{Router: ob, Forward: ob.Forward})
			fwdBody = fwdBody[:0]
			if chunk := ob.to[1]; len(chunk) > 0 {
				fwdBody = snappy.Encode(fwdBody[:cap(fwdBody)], chunk)
				ob.pool.put(chunk)
			}
		}))
		rounds := 0
		run(b, func() {
			for _, body := range bodies {
				post(sender, body, nil)
				if len(fwdBody) > 0 {
					post(owner, fwdBody, header)
				}
			}
			aggs[0].Flush(false)
			aggs[1].Flush(false)
			rounds++
		})
		perRound := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		fwdPerRound := float64(forwarded) / float64(rounds)
		b.ReportMetric(fwdPerRound/float64(len(all)), "forwarded/sample")
		if alone > 0 {
			b.ReportMetric((perRound-alone)/fwdPerRound, "extra-ns/forwarded-sample")
		}
	})
}

// discard is a sink that drops what it is given.
type discard struct{}

func (discard) Send([]prompb.TimeSeries) {}
