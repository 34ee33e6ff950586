package remotewrite

import (
	"bytes"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
)

func TestLimitsRefuseSeriesAndRequests(t *testing.T) {
	limits := Limits{MaxSeriesPerRequest: 3, MaxLabelsPerSeries: 3, MaxLabelNameLength: 8, MaxLabelValueLength: 10}
	ok := series(1, "__name__", "up", "job", "a")
	tests := []struct {
		name         string
		series       []prompb.TimeSeries
		wantCode     int
		wantAppended int
		wantSeries   string // reason counted in rejected_series_total, if any
		wantRequest  string // reason counted in rejected_requests_total, if any
	}{
		{"within_every_limit_is_204", []prompb.TimeSeries{ok, ok, ok}, 204, 3, "", ""},
		{"labels_at_the_limit_accepted", []prompb.TimeSeries{series(1, "__name__", "up", "a", "1", "b", "2")}, 204, 1, "", ""},
		{"too_many_series_refuses_the_request", []prompb.TimeSeries{ok, ok, ok, ok}, 413, 0, "", "too_many_series"},
		{"too_many_labels_drops_the_series", []prompb.TimeSeries{ok, series(1, "__name__", "up", "a", "1", "b", "2", "c", "3")}, 400, 1, "too_many_labels", ""},
		{"many_more_labels_than_allowed_drops_the_series", []prompb.TimeSeries{series(1, manyLabels(1000)...), ok}, 400, 1, "too_many_labels", ""},
		{"label_name_too_long_drops_the_series", []prompb.TimeSeries{series(1, "__name__", "up", "instance", "x", "very_long_name", "x"), ok}, 400, 1, "label_name_too_long", ""},
		{"label_value_too_long_drops_the_series", []prompb.TimeSeries{ok, series(1, "__name__", "up", "pod", strings.Repeat("p", 11))}, 400, 1, "label_value_too_long", ""},
		{"metric_name_is_a_label_value", []prompb.TimeSeries{series(1, "__name__", "a_very_long_metric_name")}, 400, 0, "label_value_too_long", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := &recordingAppender{}
			reg := prometheus.NewRegistry()
			h := NewHandler(app, HandlerOptions{Limits: limits}, reg, nil)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", WritePath, bytes.NewReader(encodeBody(t, tt.series...))))
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tt.wantCode, rec.Body)
			}
			if len(app.series) != tt.wantAppended {
				t.Errorf("appended %d series, want %d", len(app.series), tt.wantAppended)
			}
			if tt.wantSeries != "" {
				if got := metricValue(t, reg, "cardinal_receiver_rejected_series_total", map[string]string{"reason": tt.wantSeries}); got != 1 {
					t.Errorf("rejected_series_total{reason=%q} = %v, want 1", tt.wantSeries, got)
				}
			}
			if tt.wantRequest != "" {
				if got := metricValue(t, reg, "cardinal_receiver_rejected_requests_total", map[string]string{"reason": tt.wantRequest}); got != 1 {
					t.Errorf("rejected_requests_total{reason=%q} = %v, want 1", tt.wantRequest, got)
				}
			}
			if len(rec.Body.String()) > 2048 {
				t.Errorf("answer is %d bytes: it should name the series within bounds", rec.Body.Len())
			}
		})
	}
}

// manyLabels returns name/value pairs for a series with n labels besides its name.
func manyLabels(n int) []string {
	kv := []string{"__name__", "wide"}
	for i := range n {
		kv = append(kv, fmt.Sprintf("l%04d", i), "v")
	}
	return kv
}

// A series with a million labels in a small snappy body must not make the Decoder store a
// million labels: it keeps one more than the limit, enough for validation to refuse it.
func TestDecoderStoresAtMostOneLabelOverTheLimit(t *testing.T) {
	label := []byte{0x0a, 0x04, 0x0a, 0x00, 0x12, 0x00} // Label{Name: "", Value: ""}, length-prefixed
	labelsField := bytes.Repeat(label, 1<<20)
	var body []byte
	body = append(body, 0x0a) // WriteRequest.timeseries
	body = appendVarint(body, uint64(len(labelsField)))
	body = append(body, labelsField...)

	d := NewDecoder(0)
	d.SetLimits(Limits{MaxLabelsPerSeries: 30})
	var req prompb.WriteRequest
	if err := d.Decode(snappy.Encode(nil, body), &req); err != nil {
		t.Fatal(err)
	}
	if n := len(req.Timeseries[0].Labels); n != 31 {
		t.Fatalf("decoded %d labels, want 31 (the limit plus one)", n)
	}
	if c := cap(req.Timeseries[0].Labels); c > 64 {
		t.Errorf("label slice capacity %d: the decoder grew it past the limit", c)
	}
}

func TestDecoderRefusesTooManySeriesBeforeDecodingThemAll(t *testing.T) {
	body := bytes.Repeat([]byte{0x0a, 0x00}, 1<<20) // a million empty series
	d := NewDecoder(0)
	d.SetLimits(Limits{MaxSeriesPerRequest: 100})
	var req prompb.WriteRequest
	err := d.Unmarshal(body, &req)
	if !errors.Is(err, ErrTooManySeries) || !errors.Is(err, ErrRequestTooLarge) {
		t.Fatalf("err = %v, want ErrTooManySeries wrapping ErrRequestTooLarge", err)
	}
	if c := cap(req.Timeseries); c > 256 {
		t.Errorf("series slice capacity %d: the decoder went on past the limit", c)
	}
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
