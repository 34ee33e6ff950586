package downstream

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
)

// fakeSink records what it is sent and fails its Shutdown on request.
type fakeSink struct {
	sent        [][]prompb.TimeSeries
	full        bool
	shutdownErr error
}

func (s *fakeSink) Send(series []prompb.TimeSeries) { s.sent = append(s.sent, series) }
func (s *fakeSink) Full() bool                      { return s.full }
func (s *fakeSink) Start()                          {}
func (s *fakeSink) Shutdown(context.Context) error  { return s.shutdownErr }

func TestFanoutSharesSeriesAndNamesTheSinkOnce(t *testing.T) {
	a, b := &fakeSink{}, &fakeSink{full: true, shutdownErr: errors.New("3 samples not delivered at shutdown")}
	f := Fanout{{Name: "a", Kind: "remote_write", Sink: a}, {Name: "b", Kind: "timescaledb", Sink: b}}

	series := []prompb.TimeSeries{{Labels: labels("__name__", "x")}}
	f.Send(series)
	if len(a.sent) != 1 || len(b.sent) != 1 || &a.sent[0][0] != &series[0] || &b.sent[0][0] != &series[0] {
		t.Error("every sink should get the caller's series themselves, shared")
	}
	if name, full := f.FullSink(); !full || name != "b" {
		t.Errorf("FullSink = %q, %v; want b, true", name, full)
	}
	err := f.Shutdown(context.Background())
	if err == nil || err.Error() != `downstream "b": 3 samples not delivered at shutdown` {
		t.Errorf("Shutdown = %v, want the failing sink's error with its name once", err)
	}
	if strings.Contains(err.Error(), `"a"`) {
		t.Errorf("Shutdown names a sink that shut down cleanly: %v", err)
	}
}
