package e2e

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// TestRemoteWrite2_requests_are_aggregated_and_acknowledged_with_counts sends Remote Write
// 2.0 requests (a symbol table, label references, inline metadata) to the real binary, with
// a WAL, as a Prometheus 3 agent configured with protobuf_message:
// io.prometheus.write.v2.Request would: each is answered 204 with -Written headers counting
// its samples, a series the spec forbids is refused with 400 and counted while the rest is
// taken, and the aggregate downstream is the sum of the counters sent.
func TestRemoteWrite2_requests_are_aggregated_and_acknowledged_with_counts(t *testing.T) {
	prom := startPrometheus(t, prometheusOptions{})
	card := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: 2s
  flush_delay: 1s
downstream:
  remote_write:
    - url: %s
wal:
  dir: %s
rules:
  - metric_name: rw2_requests_total
    type: counter
    drop_labels: [pod]
`, prom.WriteURL, t.TempDir()))

	post := func(req *writev2.Request) (*http.Response, string) {
		t.Helper()
		raw, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		hr, err := http.NewRequest(http.MethodPost, card.WriteURL, bytes.NewReader(snappy.Encode(nil, raw)))
		if err != nil {
			t.Fatal(err)
		}
		hr.Header.Set("Content-Encoding", "snappy")
		hr.Header.Set("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request")
		hr.Header.Set("X-Prometheus-Remote-Write-Version", "2.0.0")
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var msg bytes.Buffer
		_, _ = msg.ReadFrom(resp.Body)
		return resp, msg.String()
	}
	// request is one scrape round at ms: pods a, b, c of code 200 and 500, each counter at
	// (pod+1)×(code/100)×round; bad adds a series with no sample, which 2.0 forbids.
	request := func(round int, ms int64, bad bool) *writev2.Request {
		st := writev2.NewSymbolTable()
		var req writev2.Request
		for p, pod := range []string{"a", "b", "c"} {
			for _, code := range []int{200, 500} {
				ts := writev2.TimeSeries{
					LabelsRefs: []uint32{st.Symbolize("__name__"), st.Symbolize("rw2_requests_total"),
						st.Symbolize("code"), st.Symbolize(fmt.Sprint(code)), st.Symbolize("pod"), st.Symbolize(pod)},
					Samples:  []writev2.Sample{{Value: float64((p + 1) * code / 100 * round), Timestamp: ms}},
					Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("Requests served.")},
				}
				req.Timeseries = append(req.Timeseries, ts)
			}
		}
		if bad {
			req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
				LabelsRefs: []uint32{st.Symbolize("__name__"), st.Symbolize("rw2_requests_total"), st.Symbolize("pod"), st.Symbolize("d")},
			})
		}
		req.Symbols = st.Symbols()
		return &req
	}

	start := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	rounds := 16
	for r := range rounds {
		bad := r == 3
		resp, msg := post(request(r, start.Add(time.Duration(r)*2*time.Second).UnixMilli(), bad))
		wantCode := http.StatusNoContent
		if bad {
			wantCode = http.StatusBadRequest
		}
		if resp.StatusCode != wantCode {
			t.Fatalf("round %d: %d %q, want %d", r, resp.StatusCode, msg, wantCode)
		}
		for h, want := range map[string]string{
			"X-Prometheus-Remote-Write-Samples-Written":    "6",
			"X-Prometheus-Remote-Write-Histograms-Written": "0",
			"X-Prometheus-Remote-Write-Exemplars-Written":  "0",
		} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("round %d: %s = %q, want %q", r, h, got, want)
			}
		}
	}
	if v, _ := metricValue(scrapeCardinal(t, card.URL), "cardinal_receiver_rejected_series_total", "reason", "no_samples"); v != 1 {
		t.Errorf("rejected series without samples: %v, want 1", v)
	}
	// The metadata said counter, as the rule is: no mismatch. One request declaring the
	// metric a gauge is counted, and logged.
	if v, _ := metricValue(scrapeCardinal(t, card.URL), "cardinal_aggregator_metadata_type_mismatches_total", "rule", "rw2_requests_total"); v != 0 {
		t.Errorf("type mismatches %v before a gauge was declared, want 0", v)
	}
	gauge := request(rounds, start.Add(time.Duration(rounds)*2*time.Second).UnixMilli(), false)
	for i := range gauge.Timeseries {
		gauge.Timeseries[i].Metadata.Type = writev2.Metadata_METRIC_TYPE_GAUGE
	}
	gauge.Timeseries = gauge.Timeseries[:1]
	gauge.Timeseries[0].Samples[0].Value = float64(2 * (rounds - 1)) // pod a, code 200, unchanged: nothing counted
	if resp, msg := post(gauge); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("gauge metadata: %d %q", resp.StatusCode, msg)
	}
	if v, _ := metricValue(scrapeCardinal(t, card.URL), "cardinal_aggregator_metadata_type_mismatches_total", "rule", "rw2_requests_total"); v != 1 {
		t.Errorf("type mismatches %v after a gauge was declared, want 1", v)
	}
	if !strings.Contains(card.Log(), "declared_type=gauge") {
		t.Errorf("the mismatch is not logged:\n%s", card.Log())
	}
	// Per code, the pods' counters sum to (1+2+3)×code/100 per round: the running total
	// after the last round counts rounds-1 increases from the first (a baseline).
	eventually(t, 60*time.Second, "the aggregate of the last round downstream", func() (bool, error) {
		got := query(t, prom.URL, `last_over_time(rw2_requests_total[5m])`, time.Now())
		ok := len(got) == 2
		for _, code := range []int{200, 500} {
			want := float64(6 * code / 100 * (rounds - 1))
			if v := got[fmt.Sprintf(`{__name__="rw2_requests_total", code="%d"}`, code)]; math.Abs(v-want) > 1e-9 {
				ok = false
			}
		}
		return ok, fmt.Errorf("aggregate %v", got)
	})
}

// TestRemoteWrite2_sender_to_a_2_0_receiver_and_to_a_1_0_one runs a cardinal whose
// downstreams are set to send Remote Write 2.0: one is a second cardinal (which speaks 2.0
// and forwards what no rule selects, as 1.0, to a Prometheus), the other Debian's
// Prometheus 2.42, which does not speak 2.0: it decodes the body as an empty 1.0 request and
// answers 204 without -Written headers, which the sender must count as failed, not sent.
func TestRemoteWrite2_sender_to_a_2_0_receiver_and_to_a_1_0_one(t *testing.T) {
	prom := startPrometheus(t, prometheusOptions{})
	old := startPrometheus(t, prometheusOptions{})
	relay := startCardinal(t, fmt.Sprintf(`
aggregator: {unmatched: forward}
downstream:
  remote_write:
    - url: %s
`, prom.WriteURL))
	card := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: 2s
  flush_delay: 1s
downstream:
  remote_write:
    - name: relay
      url: %s
      protobuf_message: io.prometheus.write.v2.Request
    - name: old
      url: %s
      protobuf_message: io.prometheus.write.v2.Request
rules:
  - metric_name: rw2_sent_total
    type: counter
    drop_labels: [pod]
`, relay.WriteURL, old.WriteURL))
	start := time.Now().Add(-20 * time.Second).Truncate(time.Second)
	for r := range 10 {
		ms := start.Add(time.Duration(r) * 2 * time.Second).UnixMilli()
		var series []prompb.TimeSeries
		for _, pod := range []string{"a", "b"} {
			series = append(series, prompb.TimeSeries{Labels: labelSet("rw2_sent_total", "pod", pod),
				Samples: []prompb.Sample{{Value: float64(10 * r), Timestamp: ms}}})
		}
		if code := pushRW(t, card.WriteURL, series); code != http.StatusNoContent {
			t.Fatalf("round %d: %d", r, code)
		}
	}
	// 2 pods × 10 per round, 9 increases after the baseline.
	eventually(t, 60*time.Second, "the aggregate through the 2.0 relay", func() (bool, error) {
		got := query(t, prom.URL, `last_over_time(rw2_sent_total[5m])`, time.Now())
		return got[`{__name__="rw2_sent_total"}`] == 180, fmt.Errorf("%v", got)
	})
	eventually(t, 30*time.Second, "the 1.0 receiver's samples counted as failed", func() (bool, error) {
		ms := scrapeCardinal(t, card.URL)
		failed, _ := metricValue(ms, "cardinal_downstream_samples_failed_total", "downstream", "old")
		sent, _ := metricValue(ms, "cardinal_downstream_samples_sent_total", "downstream", "old")
		return failed > 0 && sent == 0, fmt.Errorf("old: failed %v, sent %v", failed, sent)
	})
	if n := query(t, old.URL, `count({__name__=~"rw2.*"})`, time.Now()); len(n) != 0 {
		t.Errorf("the 1.0 receiver stored %v", n)
	}
	if !strings.Contains(card.Log(), "does not speak Remote Write 2.0") {
		t.Errorf("cardinal's log does not say why the 1.0 receiver's samples failed:\n%s", card.Log())
	}
}
