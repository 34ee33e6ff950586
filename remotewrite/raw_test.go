package remotewrite

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// rawAppender records, per series it is given, whether RawSeries has its encoding, and
// checks that the encoding decodes to the series as appended.
type rawAppender struct {
	t     *testing.T
	calls int
	got   []string // "name:raw", "name:encoded"
	wrong []string
}

func (a *rawAppender) Append(ctx context.Context, req *prompb.WriteRequest, _ []byte) error {
	a.calls++
	raw := RawSeries(ctx)
	if raw != nil && len(raw) != len(req.Timeseries) {
		a.wrong = append(a.wrong, fmt.Sprintf("%d raw series for %d series", len(raw), len(req.Timeseries)))
	}
	for i := range req.Timeseries {
		ts := &req.Timeseries[i]
		var r []byte
		if i < len(raw) {
			r = raw[i]
		}
		kind := "encoded"
		if r != nil {
			kind = "raw"
		}
		a.got = append(a.got, metricNameOf(ts)+":"+kind)
		// Either way the bytes forwarded must be the series: decode them back.
		var back prompb.WriteRequest
		if err := back.Unmarshal(AppendRawSeries(nil, r, ts)); err != nil || len(back.Timeseries) != 1 {
			a.wrong = append(a.wrong, fmt.Sprintf("%s: %v", metricNameOf(ts), err))
			continue
		}
		if d := diffRequests(ts.Labels, back.Timeseries[0].Labels); d != "" || len(back.Timeseries[0].Samples) != len(ts.Samples) {
			a.wrong = append(a.wrong, fmt.Sprintf("%s: the bytes decode to another series: %s", metricNameOf(ts), d))
		}
	}
	return nil
}

func metricNameOf(ts *prompb.TimeSeries) string {
	for _, l := range ts.Labels {
		if l.Name == "__name__" {
			return l.Value
		}
	}
	return ""
}

// TestRawSeriesFollowTheSeriesAppended: during Append of a 1.0 request, RawSeries gives each
// series kept its bytes as they arrived, aligned after an invalid series was taken out, and
// nil for a series validation changed (its labels sorted) or for a 2.0 request.
func TestRawSeriesFollowTheSeriesAppended(t *testing.T) {
	app := &rawAppender{t: t}
	h := NewHandler(app, HandlerOptions{}, nil, nil)
	body := encodeBody(t,
		series(1, "__name__", "first", "job", "a"),
		series(2, "job", "nameless"), // invalid: removed, the rest move up
		series(3, "zone", "eu", "__name__", "unsorted"),
		series(4, "__name__", "last", "job", "b"),
	)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", WritePath, bytes.NewReader(body)))
	if rec.Code != 400 {
		t.Fatalf("status %d, want 400 for the nameless series", rec.Code)
	}
	if want := "[first:raw unsorted:encoded last:raw]"; fmt.Sprint(app.got) != want {
		t.Errorf("1.0: %v, want %s", app.got, want)
	}

	app.got = nil
	if rec := postV2(h, v2Request(t, []string{"__name__", "v2", "job", "a"}), contentTypeV2, "snappy"); rec.Code != 204 {
		t.Fatalf("2.0: status %d: %s", rec.Code, rec.Body)
	}
	if want := "[v2:encoded]"; fmt.Sprint(app.got) != want {
		t.Errorf("2.0: %v, want %s", app.got, want)
	}
	for _, w := range app.wrong {
		t.Error(w)
	}
}

// CheckRawSeries accepts runs of series as AppendRawSeries makes them, empty included, and
// refuses a run cut short, a length past the end, and a field other than a series.
func TestCheckRawSeries(t *testing.T) {
	ts := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "m"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 5}}}
	one := AppendRawSeries(nil, nil, &ts)
	two := AppendRawSeries(bytes.Clone(one), nil, &ts)
	for _, good := range [][]byte{nil, one, two} {
		if err := CheckRawSeries(good); err != nil {
			t.Errorf("CheckRawSeries(%x) = %v, want nil", good, err)
		}
	}
	for name, bad := range map[string][]byte{
		"cut short":        two[:len(two)-1],
		"length past end":  {0x0a, 0xff},
		"a tag cut short":  {0x0a, 0x00, 0x80},
		"metadata field 3": append(bytes.Clone(one), 0x1a, 0x00),
	} {
		if err := CheckRawSeries(bad); err == nil {
			t.Errorf("%s: CheckRawSeries(%x) = nil, want an error", name, bad)
		}
	}
}
