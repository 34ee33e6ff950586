package timescale

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/downstream/timescale/pgtest"
)

// remoteWriteReceiver is a minimal Prometheus remote-write receiver: it decodes requests
// with prompb, as Prometheus does, and remembers every sample (a resent sample replaces the
// same series and timestamp, as in Prometheus).
type remoteWriteReceiver struct {
	mu           sync.Mutex
	samples      map[sampleKey]float64
	staleMarkers int
}

// sampleKey identifies a sample by its label set (rendered sorted) and timestamp.
type sampleKey struct {
	series string
	ts     int64
}

func labelKey(ls map[string]string) string {
	names := make([]string, 0, len(ls))
	for n := range ls {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%q,", n, ls[n])
	}
	return b.String()
}

func (rw *remoteWriteReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	compressed, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, err := snappy.Decode(nil, compressed)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	for _, ts := range req.Timeseries {
		ls := map[string]string{}
		for _, l := range ts.Labels {
			ls[l.Name] = l.Value
		}
		for _, s := range ts.Samples {
			if value.IsStaleNaN(s.Value) {
				rw.staleMarkers++
				continue // Prometheus records the marker; SQL does not store it (documented)
			}
			rw.samples[sampleKey{labelKey(ls), s.Timestamp}] = s.Value
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func postRemoteWrite(t *testing.T, url string, series []prompb.TimeSeries) {
	t.Helper()
	raw, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(snappy.Encode(nil, raw))))
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("remote write: %s", resp.Status)
	}
}

// sameFloat compares stored values exactly, any NaN matching any NaN. Zero matches negative
// zero: remote write's protobuf encoding does not carry the sign of a zero (it is the
// default value and omitted), while SQL keeps it.
func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b
}

// The same batches go to the sink and to a remote-write receiver; what SQL returns through the
// series_samples view must be exactly what the receiver got, stale markers aside.
func TestSQLHoldsWhatRemoteWriteReceived(t *testing.T) {
	forEachMode(t, testSQLHoldsWhatRemoteWriteReceived)
}

func testSQLHoldsWhatRemoteWriteReceived(t *testing.T, pg *pgtest.Server, mode Mode) {
	dsn := pg.CreateDatabase(t, "compare")
	ts := startTestSink(t, dsn, func(c *Config) { c.BatchSize = 7 }, nil) // small batches: many statements
	if ts.Mode() != mode {
		t.Fatalf("Mode() = %q, want %q", ts.Mode(), mode)
	}
	receiver := &remoteWriteReceiver{samples: map[sampleKey]float64{}}
	srv := httptest.NewServer(receiver)
	defer srv.Close()

	t0 := millis("2023-11-14T22:13:20.123Z")
	stale := math.Float64frombits(value.StaleNaN)
	batches := [][]prompb.TimeSeries{
		{
			{Labels: labels("__name__", "http_requests_total", "job", "api", "path", `/v1/"quoted"\back`),
				Samples: []prompb.Sample{{Timestamp: t0, Value: 1.5}, {Timestamp: t0 + 15_000, Value: 3}, {Timestamp: t0 + 30_000, Value: 4.25}}},
			{Labels: labels("__name__", "temperature_celsius", "city", "Zürich", "note", "日本語 🚀\nnewline\ttab"),
				Samples: []prompb.Sample{{Timestamp: t0, Value: math.Copysign(0, -1)}}},
			{Labels: labels("__name__", "extremes", "kind", "inf"), Samples: []prompb.Sample{{Timestamp: t0, Value: math.Inf(1)}}},
			{Labels: labels("__name__", "extremes", "kind", "-inf"), Samples: []prompb.Sample{{Timestamp: t0, Value: math.Inf(-1)}}},
			{Labels: labels("__name__", "extremes", "kind", "nan"), Samples: []prompb.Sample{{Timestamp: t0, Value: math.NaN()}}},
			{Labels: labels("__name__", "extremes", "kind", "max"), Samples: []prompb.Sample{{Timestamp: t0, Value: math.MaxFloat64}}},
			{Labels: labels("__name__", "extremes", "kind", "tiny"), Samples: []prompb.Sample{{Timestamp: t0, Value: math.SmallestNonzeroFloat64}}},
			{Labels: labels("job", "unsorted", "__name__", "labels_out_of_order", "a", "1"), Samples: []prompb.Sample{{Timestamp: t0, Value: 7}}},
			{Labels: labels("__name__", "before_epoch"), Samples: []prompb.Sample{{Timestamp: -1500, Value: 0.1}}},
		},
		append(syntheticSeries("node_load1", 20, t0+15_000, 0.5),
			prompb.TimeSeries{Labels: labels("__name__", "http_requests_total", "job", "api", "path", `/v1/"quoted"\back`),
				Samples: []prompb.Sample{{Timestamp: t0 + 45_000, Value: 6}, {Timestamp: t0 + 60_000, Value: stale}}},
		),
	}
	batches = append(batches, batches[0], batches[1]) // resent, as Prometheus does after a failure

	rows := 0
	for _, b := range batches {
		postRemoteWrite(t, srv.URL, b)
		ts.Send(cloneSeries(b))
		rows += countSamples(b)
	}
	ts.waitProcessed(t, rows-2) // the two stale markers are not rows

	conn := connect(t, dsn)
	got := map[sampleKey]float64{}
	sqlRows, err := conn.Query(context.Background(), "SELECT metric, labels, time, value FROM series_samples")
	if err != nil {
		t.Fatal(err)
	}
	for sqlRows.Next() {
		var metric string
		var ls map[string]string
		var at time.Time
		var v float64
		if err := sqlRows.Scan(&metric, &ls, &at, &v); err != nil {
			t.Fatal(err)
		}
		ls["__name__"] = metric
		k := sampleKey{labelKey(ls), at.UnixMilli()}
		if _, dup := got[k]; dup {
			t.Errorf("sample %v stored twice", k)
		}
		got[k] = v
	}
	if err := sqlRows.Err(); err != nil {
		t.Fatal(err)
	}

	if receiver.staleMarkers != 2 {
		t.Fatalf("receiver got %d stale markers, want 2: the comparison must cover them", receiver.staleMarkers)
	}
	if len(got) != len(receiver.samples) {
		t.Errorf("SQL has %d samples, the remote-write receiver %d", len(got), len(receiver.samples))
	}
	for k, want := range receiver.samples {
		v, ok := got[k]
		switch {
		case !ok:
			t.Errorf("missing in SQL: %s @%d = %v", k.series, k.ts, want)
		case !sameFloat(v, want):
			t.Errorf("%s @%d: SQL %v (%#x), remote write %v (%#x)", k.series, k.ts, v, math.Float64bits(v), want, math.Float64bits(want))
		}
	}
	if got := ts.metric(t, "cardinal_timescale_rows_dropped_total", "reason", dropStaleMarker); got != 2 {
		t.Errorf("stale markers counted as not written = %v, want 2", got)
	}
	if got := ts.metric(t, "cardinal_timescale_series_created_total"); got != 29 {
		t.Errorf("series created = %v, want 29 (each once)", got)
	}
}

func TestRetriedBatchInsertsOnce(t *testing.T) {
	forEachMode(t, testRetriedBatchInsertsOnce)
}

func testRetriedBatchInsertsOnce(t *testing.T, pg *pgtest.Server, mode Mode) {
	t0 := millis("2024-05-01T12:00:00Z")

	tests := []struct {
		name string
		// deliver sends series so that some of them reach the database more than once.
		deliver func(t *testing.T, ts *testSink, proxy *faultProxy, series []prompb.TimeSeries)
		// wantWritten and wantDuplicates are the rows the sink must report inserted and
		// found already stored.
		wantWritten, wantDuplicates int
	}{
		{
			name: "same_batch_sent_twice",
			deliver: func(t *testing.T, ts *testSink, _ *faultProxy, series []prompb.TimeSeries) {
				ts.Send(cloneSeries(series))
				ts.Send(cloneSeries(series))
			},
			wantWritten:    3000,
			wantDuplicates: 3000,
		},
		{
			name: "overlapping_window_replayed",
			deliver: func(t *testing.T, ts *testSink, _ *faultProxy, series []prompb.TimeSeries) {
				ts.Send(cloneSeries(series[:2000]))
				ts.waitProcessed(t, 2000)
				ts.Send(cloneSeries(series[1000:]))
			},
			wantWritten:    3000,
			wantDuplicates: 1000,
		},
		{
			name: "answer_lost_after_commit",
			deliver: func(t *testing.T, ts *testSink, proxy *faultProxy, series []prompb.TimeSeries) {
				proxy.loseNextCommitAnswer()
				ts.Send(cloneSeries(series))
				select {
				case <-proxy.cuts:
				case <-time.After(30 * time.Second):
					t.Fatal("the proxy never cut an answer")
				}
			},
			// The first attempt committed every row but its answer never came back, so the
			// sink counts none as written; the retry must find all of them stored.
			wantWritten:    0,
			wantDuplicates: 3000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn := pg.CreateDatabase(t, tt.name)
			proxy := startFaultProxy(t, pg.Addr())
			viaProxy := strings.Replace(dsn, pg.Addr(), fmt.Sprintf("127.0.0.1:%d", proxy.port()), 1)
			ts := startTestSink(t, viaProxy, func(c *Config) { c.BatchSize = 5000 }, nil)
			if ts.Mode() != mode {
				t.Fatalf("Mode() = %q, want %q", ts.Mode(), mode)
			}
			series := syntheticSeries("retried", 3000, t0, 0)

			tt.deliver(t, ts, proxy, series)
			ts.waitProcessed(t, tt.wantWritten+tt.wantDuplicates)

			if n := countSampleRows(t, dsn); n != 3000 {
				t.Errorf("samples table has %d rows, want 3000", n)
			}
			if got := ts.metric(t, "cardinal_timescale_rows_written_total"); int(got) != tt.wantWritten {
				t.Errorf("rows reported inserted = %v, want %d", got, tt.wantWritten)
			}
			if got := ts.metric(t, "cardinal_timescale_rows_duplicate_total"); int(got) != tt.wantDuplicates {
				t.Errorf("rows found already stored = %v, want %d", got, tt.wantDuplicates)
			}
			var stored int
			if err := connect(t, dsn).QueryRow(context.Background(), "SELECT count(*) FROM series").Scan(&stored); err != nil || stored != 3000 {
				t.Errorf("series table has %d rows (%v), want 3000", stored, err)
			}
		})
	}
}
