package remotewrite

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

const contentTypeV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"

// v2Request builds a 2.0 request from label sets (alternating names and values) with one
// sample each; a label set starting with "!hist" carries a histogram instead, "!none"
// nothing, "!ex" adds an exemplar.
func v2Request(t *testing.T, sets ...[]string) []byte {
	t.Helper()
	st := writev2.NewSymbolTable()
	var req writev2.Request
	for _, set := range sets {
		var ts writev2.TimeSeries
		hist, ex, none := false, false, false
		for len(set) > 0 && strings.HasPrefix(set[0], "!") {
			hist, ex, none = hist || set[0] == "!hist", ex || set[0] == "!ex", none || set[0] == "!none"
			set = set[1:]
		}
		for i := 0; i+1 < len(set); i += 2 {
			ts.LabelsRefs = append(ts.LabelsRefs, st.Symbolize(set[i]), st.Symbolize(set[i+1]))
		}
		switch {
		case none:
		case hist:
			ts.Histograms = []writev2.Histogram{{Count: &writev2.Histogram_CountInt{CountInt: 1}, Sum: 1, Timestamp: 1000,
				ZeroCount: &writev2.Histogram_ZeroCountInt{ZeroCountInt: 1}}}
		default:
			ts.Samples = []writev2.Sample{{Value: 1, Timestamp: 1000}}
		}
		if ex {
			ts.Exemplars = []writev2.Exemplar{{LabelsRefs: []uint32{st.Symbolize("trace_id"), st.Symbolize("abc")}, Value: 1, Timestamp: 1000}}
		}
		ts.Metadata = writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("Requests.")}
		req.Timeseries = append(req.Timeseries, ts)
	}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

// metadataAppender records the series' names and the request's metadata.
type metadataAppender struct {
	mu       sync.Mutex
	err      error
	series   []string
	metadata []prompb.MetricMetadata
	body     []byte
}

func (a *metadataAppender) Append(_ context.Context, req *prompb.WriteRequest, body []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	for _, ts := range req.Timeseries {
		a.series = append(a.series, describeSeries(ts.Labels))
	}
	for _, md := range req.Metadata {
		a.metadata = append(a.metadata, prompb.MetricMetadata{Type: md.Type, MetricFamilyName: strings.Clone(md.MetricFamilyName), Help: strings.Clone(md.Help)})
	}
	a.body = body
	return nil
}

func postV2(h *Handler, body []byte, contentType, encoding string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", WritePath, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// written returns the three -Written headers, "" for a missing one.
func written(rec *httptest.ResponseRecorder) [3]string {
	h := rec.Header()
	return [3]string{h.Get(HeaderSamplesWritten), h.Get(HeaderHistogramsWritten), h.Get(HeaderExemplarsWritten)}
}

func TestHandlerV2(t *testing.T) {
	good := []string{"__name__", "req_total", "job", "api"}
	tests := []struct {
		name        string
		body        []byte
		contentType string
		encoding    string
		appendErr   error
		code        int
		written     [3]string
		msg         string
		series      int
	}{
		{name: "samples_histograms_exemplars", code: 204, written: [3]string{"2", "1", "1"}, series: 3,
			body: v2Request(t, good, []string{"!ex", "__name__", "req_total", "job", "web"}, []string{"!hist", "__name__", "lat", "job", "api"})},
		// As Prometheus does, and the conformance suite expects: labels are sorted and empty
		// values dropped rather than the series refused.
		{name: "unsorted_labels_sorted", code: 204, written: [3]string{"2", "0", "0"}, series: 2,
			body: v2Request(t, good, []string{"job", "api", "__name__", "x"})},
		{name: "empty_label_value_dropped", code: 204, written: [3]string{"2", "0", "0"}, series: 2,
			body: v2Request(t, good, []string{"__name__", "x", "job", ""})},
		{name: "no_samples_refused_rest_taken", code: 400, written: [3]string{"1", "0", "0"}, series: 1, msg: "no samples or histograms",
			body: v2Request(t, good, []string{"!none", "__name__", "x"})},
		{name: "missing_name_refused", code: 400, written: [3]string{"0", "0", "0"}, msg: "missing metric name",
			body: v2Request(t, []string{"job", "api"})},
		{name: "corrupt_body_is_400_not_415", code: 400, written: [3]string{"0", "0", "0"}, msg: "malformed",
			body: snappy.Encode(nil, []byte{0x2a, 0x05, 0x01})},
		{name: "not_snappy_is_400", code: 400, written: [3]string{"0", "0", "0"}, msg: "snappy", body: []byte("plain text")},
		{name: "symbol_ref_out_of_range_is_400", code: 400, written: [3]string{"0", "0", "0"}, msg: "out of a symbol table",
			body: snappy.Encode(nil, v2Body([]string{"", "__name__", "x"}, v2Series([]uint32{1, 2, 1, 7}, v2Sample(1, 1))))},
		{name: "zstd_is_415_without_headers", code: 415, encoding: "zstd", msg: "Content-Encoding", body: v2Request(t, good)},
		{name: "unavailable_is_503_with_nothing_written", code: 503, appendErr: ErrUnavailable, written: [3]string{"0", "0", "0"},
			body: v2Request(t, good)},
		{name: "remote_write_1_has_no_headers", code: 204, contentType: "application/x-protobuf", series: 1,
			body: encodeBody(t, series(1, "__name__", "up"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := &metadataAppender{err: tt.appendErr}
			h := NewHandler(app, HandlerOptions{}, nil, nil)
			ct := tt.contentType
			if ct == "" {
				ct = contentTypeV2
			}
			rec := postV2(h, tt.body, ct, tt.encoding)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.msg) {
				t.Errorf("status %d %q, want %d with %q", rec.Code, rec.Body, tt.code, tt.msg)
			}
			if got := written(rec); got != tt.written {
				t.Errorf("-Written headers %v, want %v", got, tt.written)
			}
			if tt.appendErr == nil && len(app.series) != tt.series {
				t.Errorf("appended %v, want %d series", app.series, tt.series)
			}
			if ct == contentTypeV2 && app.body != nil {
				t.Error("a 2.0 body was handed to the Appender as if it were 1.0")
			}
		})
	}
}

func TestHandlerV2PassesMetadataOn(t *testing.T) {
	app := &metadataAppender{}
	h := NewHandler(app, HandlerOptions{}, nil, nil)
	rec := postV2(h, v2Request(t, []string{"__name__", "req_total", "job", "api"}), contentTypeV2, "snappy")
	if rec.Code != 204 {
		t.Fatalf("status %d %q", rec.Code, rec.Body)
	}
	want := prompb.MetricMetadata{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "req_total", Help: "Requests."}
	if len(app.metadata) != 1 || app.metadata[0].Type != want.Type || app.metadata[0].MetricFamilyName != want.MetricFamilyName || app.metadata[0].Help != want.Help {
		t.Errorf("metadata %+v, want [%+v]", app.metadata, want)
	}
}
