package loadgen

import (
	"io"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// testStartMs is a fixed round-0 timestamp (2023-11-14T22:13:20Z).
const testStartMs = 1_700_000_000_000

// mustConfig parses loadgen flags or fails the test.
func mustConfig(t *testing.T, args ...string) config {
	t.Helper()
	cfg, err := parseConfig(args, io.Discard)
	if err != nil {
		t.Fatalf("parseConfig(%q): %v", args, err)
	}
	return cfg
}

// mustBuild lays out cfg from testStartMs at interval and encodes its templates.
func mustBuild(t *testing.T, cfg config, interval time.Duration) (*plan, []*requestTemplate) {
	t.Helper()
	p := newPlan(cfg, testStartMs, interval)
	templates, err := buildTemplates(p, cfg.samplesPerReq)
	if err != nil {
		t.Fatalf("buildTemplates: %v", err)
	}
	return p, templates
}

// decodeBody snappy-decodes and unmarshals one request body.
func decodeBody(t *testing.T, body []byte) (prompb.WriteRequest, []byte) {
	t.Helper()
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatalf("snappy.Decode: %v", err)
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		t.Fatalf("WriteRequest.Unmarshal: %v", err)
	}
	return wr, raw
}

// roundSeries patches every template for round r and returns the decoded series, in order.
func roundSeries(t *testing.T, p *plan, templates []*requestTemplate, r int64) []prompb.TimeSeries {
	t.Helper()
	var out []prompb.TimeSeries
	for _, tmpl := range templates {
		if err := tmpl.patch(p, r); err != nil {
			t.Fatalf("patch round %d: %v", r, err)
		}
		wr, _ := decodeBody(t, tmpl.body)
		out = append(out, wr.Timeseries...)
	}
	return out
}

// labelString renders a series' labels as name="value" pairs in wire order.
func labelString(ls []prompb.Label) string {
	s := "{"
	for i, l := range ls {
		if i > 0 {
			s += ","
		}
		s += l.Name + "=" + `"` + l.Value + `"`
	}
	return s + "}"
}

// labelValue returns the value of label name, or "".
func labelValue(ls []prompb.Label, name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}
