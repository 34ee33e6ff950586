package downstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/remotewrite"
)

// v2Receiver is cardinal's own receiver, which speaks 2.0, recording what it takes.
type v2Receiver struct {
	mu     sync.Mutex
	series []string
	hists  int
}

func (r *v2Receiver) Append(_ context.Context, req *prompb.WriteRequest, _ []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ts := range req.Timeseries {
		var parts []string
		for _, l := range ts.Labels {
			parts = append(parts, l.Name+"="+l.Value)
		}
		r.series = append(r.series, strings.Join(parts, ","))
		r.hists += len(ts.Histograms)
	}
	return nil
}

func (r *v2Receiver) count() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.series), r.hists
}

func TestRemoteWriteSendsV2(t *testing.T) {
	rec := &v2Receiver{}
	var contentTypes sync.Map
	h := remotewrite.NewHandler(rec, remotewrite.HandlerOptions{}, nil, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		contentTypes.Store(r.Header.Get("Content-Type")+" "+r.Header.Get("X-Prometheus-Remote-Write-Version"), true)
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	cfg := testConfig(srv.URL + remotewrite.WritePath)
	cfg.ProtobufMessage = MessageV2
	reg := prometheus.NewRegistry()
	c := newTestClient(t, cfg, reg)
	c.Start()
	series := seriesBatch(50, 1000)
	series = append(series, prompb.TimeSeries{
		Labels: labels("__name__", "lat", "job", "test"),
		Histograms: []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 3}, Sum: 2, Schema: 1,
			ZeroCount: &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1}, PositiveSpans: []prompb.BucketSpan{{Offset: 0, Length: 2}},
			PositiveDeltas: []int64{1, 0}, Timestamp: 1000}},
	})
	c.Send(series)
	eventually(t, 5*time.Second, "51 series at the 2.0 receiver", func() bool { n, _ := rec.count(); return n == 51 })
	if _, hists := rec.count(); hists != 1 {
		t.Errorf("%d native histograms received, want 1", hists)
	}
	if _, ok := contentTypes.Load("application/x-protobuf;proto=io.prometheus.write.v2.Request 2.0.0"); !ok {
		t.Errorf("headers sent: %v", keysOf(&contentTypes))
	}
	eventually(t, 5*time.Second, "51 samples counted as sent", func() bool {
		return metricValue(t, reg, "cardinal_downstream_samples_sent_total", nil) == 51
	})
}

func TestRemoteWriteV2ToAReceiverThatDoesNotSpeakIt(t *testing.T) {
	tests := []struct {
		name        string
		headers     map[string]string
		sent, fail  float64
		wantLogPart string
	}{
		// Prometheus 2.x decodes a 2.0 body as an empty 1.0 request and answers 204.
		{"no_written_headers", nil, 0, 10, "does not speak Remote Write 2.0"},
		{"partial_write_acknowledged", map[string]string{remotewrite.HeaderSamplesWritten: "7", remotewrite.HeaderHistogramsWritten: "0",
			remotewrite.HeaderExemplarsWritten: "0"}, 7, 3, "wrote fewer samples than sent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.headers {
					w.Header().Set(k, v)
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			cfg := testConfig(srv.URL)
			cfg.ProtobufMessage = MessageV2
			cfg.Queue.Shards = 1 // one batch of 10, whatever the series' shards
			reg := prometheus.NewRegistry()
			logger, logs := newTestLogger()
			c, err := NewRemoteWrite(cfg, reg, logger)
			if err != nil {
				t.Fatal(err)
			}
			c.s.batchWait = 5 * time.Millisecond
			c.Start()
			c.Send(seriesBatch(10, 1000))
			eventually(t, 5*time.Second, "the batch judged", func() bool {
				return metricValue(t, reg, "cardinal_downstream_samples_failed_total", nil) == tt.fail &&
					metricValue(t, reg, "cardinal_downstream_samples_sent_total", nil) == tt.sent
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = c.Shutdown(ctx)
			if !strings.Contains(logs.String(), tt.wantLogPart) {
				t.Errorf("log lacks %q:\n%s", tt.wantLogPart, logs.String())
			}
		})
	}
}

func TestProtobufMessageIsValidated(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1/api/v1/write")
	cfg.ProtobufMessage = "io.prometheus.write.v3.Request"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "protobuf_message must be prometheus.WriteRequest") {
		t.Errorf("Validate: %v", err)
	}
}

func keysOf(m *sync.Map) []string {
	var out []string
	m.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
	return out
}
