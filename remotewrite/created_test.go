package remotewrite

import (
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// A 2.0 series' created timestamp survives what cardinal does with a request: re-encoded as
// 1.0 (a WAL record, a request forwarded to a peer) and decoded again, and encoded as 2.0
// for a downstream. Prometheus's own 1.0 types read such a body and skip the field.
func TestCreatedTimestampTravelsThrough1_0(t *testing.T) {
	const ct, t0 = 1_700_000_000_000, 1_700_000_060_000
	in := writev2.Request{
		Symbols: []string{"", "__name__", "requests_total", "pod", "a", "b"},
		Timeseries: []writev2.TimeSeries{
			{LabelsRefs: []uint32{1, 2, 3, 4}, Samples: []writev2.Sample{{Value: 7, Timestamp: t0}}, CreatedTimestamp: ct},
			{LabelsRefs: []uint32{1, 2, 3, 5}, Samples: []writev2.Sample{{Value: 9, Timestamp: t0}}},
		},
	}
	raw, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	var req prompb.WriteRequest
	if err := d.UnmarshalV2(raw, &req); err != nil {
		t.Fatal(err)
	}
	if got := CreatedTimestamp(&req.Timeseries[0]); got != ct {
		t.Fatalf("decoded 2.0: created %d, want %d", got, ct)
	}
	if got := CreatedTimestamp(&req.Timeseries[1]); got != 0 {
		t.Fatalf("decoded 2.0 series without one: created %d, want 0", got)
	}

	var enc Encoder
	body, err := enc.Encode(req.Timeseries)
	if err != nil {
		t.Fatal(err)
	}
	var again prompb.WriteRequest
	var d2 Decoder
	if err := d2.Decode(body, &again); err != nil {
		t.Fatal(err)
	}
	if got := CreatedTimestamp(&again.Timeseries[0]); got != ct {
		t.Fatalf("after 1.0 round trip: created %d, want %d", got, ct)
	}
	if got := CreatedTimestamp(&again.Timeseries[1]); got != 0 {
		t.Fatalf("after 1.0 round trip, series without one: created %d, want 0", got)
	}

	plain, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	var theirs prompb.WriteRequest
	if err := theirs.Unmarshal(plain); err != nil {
		t.Fatalf("Prometheus's 1.0 types refuse the body: %v", err)
	}
	if len(theirs.Timeseries) != 2 || theirs.Timeseries[0].Samples[0].Value != 7 {
		t.Fatalf("Prometheus's 1.0 types read %+v", theirs.Timeseries)
	}

	var enc2 EncoderV2
	body2, err := enc2.Encode(again.Timeseries)
	if err != nil {
		t.Fatal(err)
	}
	plain2, err := snappy.Decode(nil, body2)
	if err != nil {
		t.Fatal(err)
	}
	var out writev2.Request
	if err := out.Unmarshal(plain2); err != nil {
		t.Fatal(err)
	}
	if out.Timeseries[0].CreatedTimestamp != ct || out.Timeseries[1].CreatedTimestamp != 0 {
		t.Fatalf("2.0 encoding: created %d and %d, want %d and 0", out.Timeseries[0].CreatedTimestamp, out.Timeseries[1].CreatedTimestamp, ct)
	}
}

func TestSetCreatedTimestamp(t *testing.T) {
	var ts prompb.TimeSeries
	for _, ct := range []int64{1, 1_700_000_000_000, 0} {
		SetCreatedTimestamp(&ts, ct)
		if got := CreatedTimestamp(&ts); got != ct {
			t.Fatalf("set %d, read %d", ct, got)
		}
	}
}
