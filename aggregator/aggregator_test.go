package aggregator

import (
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/prompb"

	"github.com/cardinal-proxy/cardinal/rules"
)

// step is one thing a semantics test does: ingest series (at wall clock sec) or flush.
type step struct {
	wall   int64
	ingest []prompb.TimeSeries
	flush  bool
	force  bool
}

func ingestAt(wall int64, ts ...prompb.TimeSeries) step { return step{wall: wall, ingest: ts} }
func flushWall(wall int64) step                         { return step{wall: wall, flush: true} }

func runSteps(t *testing.T, r *rules.Rule, steps []step) (*Aggregator, *collectSink, *collectSink) {
	t.Helper()
	a, out, fwd, clk := newTestAggregator(t, 0, r)
	for _, s := range steps {
		if s.ingest != nil {
			flushAt(a, clk, s.wall) // the flusher runs continuously in production
			a.Ingest(s.ingest)
		}
		if s.flush {
			flushAt(a, clk, s.wall)
		}
		if s.force {
			a.Flush(true)
		}
	}
	return a, out, fwd
}

func TestSemantics(t *testing.T) {
	tests := []struct {
		name  string
		rule  *rules.Rule
		steps []step
		want  []string
	}{
		{
			name: "counter_total_baseline_then_sum_of_increases",
			rule: counterRule("req_total"),
			steps: []step{
				ingestAt(2, series("req_total{pod=a,job=x}", 1, 10), series("req_total{pod=b,job=x}", 1, 100)),
				ingestAt(12, series("req_total{pod=a,job=x}", 11, 15), series("req_total{pod=b,job=x}", 11, 110)),
				ingestAt(22, series("req_total{pod=a,job=x}", 21, 20), series("req_total{pod=b,job=x}", 21, 120)),
				flushWall(40),
			},
			// window 1 (0,10] is the rule's first, partial, window: not emitted.
			want: []string{"req_total{job=x}@20=15", "req_total{job=x}@30=30"},
		},
		{
			name: "counter_reset_mid_window_counts_new_value",
			rule: counterRule("req_total"),
			steps: []step{
				ingestAt(2, series("req_total{pod=a}", 1, 10)),
				ingestAt(12, series("req_total{pod=a}", 11, 50, 15, 3)),
				flushWall(30),
			},
			want: []string{"req_total{}@20=43"},
		},
		{
			name: "duplicate_request_is_ignored",
			rule: counterRule("req_total"),
			steps: []step{
				ingestAt(2, series("req_total{pod=a}", 1, 10)),
				ingestAt(12, series("req_total{pod=a}", 11, 20)),
				ingestAt(13, series("req_total{pod=a}", 11, 20)),
				ingestAt(14, series("req_total{pod=a}", 11, 20, 14, 25)),
				flushWall(30),
			},
			want: []string{"req_total{}@20=15"},
		},
		{
			name: "sample_at_window_end_belongs_to_that_window",
			rule: counterRule("req_total"),
			steps: []step{
				ingestAt(2, series("req_total{pod=a}", 1, 0)),
				ingestAt(21, series("req_total{pod=a}", 20, 7)),
				flushWall(40),
			},
			want: []string{"req_total{}@20=7", "req_total{}@30=7"},
		},
		{
			name: "late_counter_sample_credited_to_oldest_open_window",
			rule: counterRule("req_total"),
			steps: []step{
				ingestAt(2, series("req_total{pod=a}", 1, 0), series("req_total{pod=b}", 1, 0)),
				ingestAt(12, series("req_total{pod=a}", 11, 5)),
				ingestAt(25, series("req_total{pod=a}", 24, 6)), // closes window 2 (watermark 24 > 20+2)
				ingestAt(26, series("req_total{pod=b}", 15, 9)), // window 2 is closed: goes to window 3
				flushWall(50),
			},
			want: []string{"req_total{}@20=5", "req_total{}@30=15", "req_total{}@40=15"},
		},
		{
			name: "gauge_value_carried_forward_between_scrapes",
			rule: gaugeRule("mem"),
			steps: []step{
				// pods scraped every 30 s, 10 s windows: the sum must not dip.
				ingestAt(2, series("mem{pod=a}", 1, 3), series("mem{pod=b}", 1, 4)),
				ingestAt(32, series("mem{pod=a}", 31, 5), series("mem{pod=b}", 31, 4)),
				flushWall(45),
			},
			want: []string{"mem{}@20=7", "mem{}@30=7", "mem{}@40=9"},
		},
		{
			name: "gauge_value_at_window_end_not_after",
			rule: gaugeRule("mem"),
			steps: []step{
				ingestAt(2, series("mem{pod=a}", 1, 1)),
				// 11 lands in window 2, 21 in window 3 before window 2 closes (delay 2 s).
				ingestAt(21, series("mem{pod=a}", 11, 2, 21, 3)),
				flushWall(40),
			},
			want: []string{"mem{}@20=2", "mem{}@30=3"},
		},
		{
			name: "late_gauge_sample_dropped",
			rule: gaugeRule("mem"),
			steps: []step{
				ingestAt(2, series("mem{pod=a}", 1, 1), series("mem{pod=b}", 1, 1)),
				ingestAt(25, series("mem{pod=a}", 24, 2)),
				ingestAt(26, series("mem{pod=b}", 15, 100)), // window 2 closed
				flushWall(40),
			},
			want: []string{"mem{}@20=2", "mem{}@30=3"},
		},
		{
			name: "gauge_outputs_avg_min_max_count_last",
			rule: gaugeRule("mem", "sum", "avg", "min", "max", "count", "last"),
			steps: []step{
				ingestAt(2, series("mem{pod=a}", 1, 0)),
				ingestAt(12, series("mem{pod=a}", 11, 2), series("mem{pod=b}", 13, 6), series("mem{pod=c}", 12, 1)),
				flushWall(25),
			},
			want: []string{"mem:avg{}@20=3", "mem:count{}@20=3", "mem:last{}@20=6", "mem:max{}@20=6", "mem:min{}@20=1", "mem{}@20=9"},
		},
		{
			name: "counter_outputs_increase_and_rate",
			rule: counterRule("req_total", "total", "increase", "rate"),
			steps: []step{
				ingestAt(2, series("req_total{pod=a}", 1, 0)),
				ingestAt(12, series("req_total{pod=a}", 11, 20)),
				flushWall(25),
			},
			want: []string{"req_total:increase{}@20=20", "req_total:rate{}@20=2", "req_total{}@20=20"},
		},
		{
			name: "stale_marker_removes_input_and_output_goes_stale",
			rule: gaugeRule("mem"),
			steps: []step{
				ingestAt(2, series("mem{pod=a}", 1, 1), series("mem{pod=b}", 1, 2)),
				ingestAt(12, series("mem{pod=a}", 11, 1), series("mem{pod=b}", 11, stale)),
				ingestAt(22, series("mem{pod=a}", 21, stale)),
				flushWall(50),
			},
			want: []string{"mem{}@20=1", "mem{}@30=stale"},
		},
		{
			name: "input_expires_after_staleness_without_samples",
			rule: counterRule("req_total"),
			steps: []step{
				ingestAt(2, series("req_total{pod=a}", 1, 1)),
				ingestAt(12, series("req_total{pod=a}", 11, 2)),
				flushWall(70), // staleness 30 s: gone at the window ending 50 (11 <= 50-30... at 50: 11 <= 20)
			},
			want: []string{"req_total{}@20=1", "req_total{}@30=1", "req_total{}@40=1", "req_total{}@50=stale"},
		},
		{
			name: "nan_and_future_samples_dropped",
			rule: gaugeRule("mem"),
			steps: []step{
				ingestAt(2, series("mem{pod=a}", 1, 1)),
				ingestAt(12, series("mem{pod=a}", 11, 0), series("mem{pod=b}", 11, nan, 12, 5)),
				ingestAt(13, series("mem{pod=c}", 13+3600, 100)),
				flushWall(25),
			},
			want: []string{"mem{}@20=5"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out, _ := runSteps(t, tt.rule, tt.steps)
			if got := out.points(); !slices.Equal(got, tt.want) {
				t.Errorf("outputs\n got: %q\nwant: %q", got, tt.want)
			}
		})
	}
}

// A window close skips reading a counter rule's inputs unless one may leave (see
// ruleShard.oldestT): an input that went silent, got a stale marker, or arrived with an old
// timestamp must still leave on time while pod a, sending every 10 s, keeps the output busy.
func TestCounterInputsLeaveWhileOthersStay(t *testing.T) {
	tests := []struct {
		name string
		b    map[int64][]float64 // wall -> pod b's sample (seconds, value) sent then
		// input series after each close, at walls 12, 22, ... 62 (windows ending 10..60)
		inputs []int64
		bAdds  float64 // b's increase, counted in the window ending 20
	}{
		// Staleness is 30 s: b's last sample at 11 is stale at the window ending 50.
		{name: "silent", b: map[int64][]float64{2: {1, 5}, 12: {11, 6}}, inputs: []int64{2, 2, 2, 2, 1, 1}, bAdds: 1},
		// b's stale marker at 21 ends it at the close of the window holding it, (20,30].
		{name: "stale_marker", b: map[int64][]float64{2: {1, 5}, 12: {11, 6}, 22: {21, stale}}, inputs: []int64{2, 2, 1, 1, 1, 1}, bAdds: 1},
		// b first appears at wall 42 with a sample from 11, older than every input then:
		// stale, like the silent b, at the window ending 50.
		{name: "late_newcomer", b: map[int64][]float64{42: {11, 6}}, inputs: []int64{1, 1, 1, 1, 1, 1}}, // its one sample is a baseline
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, out, _, clk := newTestAggregator(t, 0, counterRule("req_total"))
			var got []int64
			for wall := int64(2); wall <= 62; wall += 10 {
				flushAt(a, clk, wall)
				if wall > 2 {
					got = append(got, a.Stats()[0].InputSeries)
				}
				batch := []prompb.TimeSeries{series("req_total{pod=a}", float64(wall-1), float64(wall))}
				if b, ok := tt.b[wall]; ok {
					batch = append(batch, series("req_total{pod=b}", b...))
				}
				a.Ingest(batch)
			}
			if !slices.Equal(got, tt.inputs) {
				t.Errorf("input series after each close: got %v, want %v", got, tt.inputs)
			}
			var want []string
			for end := int64(20); end <= 60; end += 10 {
				want = append(want, fmt.Sprintf("req_total{}@%d=%g", end, float64(end-10)+tt.bAdds))
			}
			if got := out.points(); !slices.Equal(got, want) {
				t.Errorf("outputs\n got: %q\nwant: %q", got, want)
			}
		})
	}
}

// A counter sample for a closed window counts in the oldest open one, and is counted as
// late: a classic input seen before, a new one, and a native histogram input.
func TestLateCounterSamplesAreCounted(t *testing.T) {
	a, out, _ := runSteps(t, counterRule("req_total"), []step{
		ingestAt(2, series("req_total{pod=a}", 1, 0), series("req_total{pod=b}", 1, 0)),
		ingestAt(12, series("req_total{pod=a}", 11, 5)),
		ingestAt(25, series("req_total{pod=a}", 24, 6)),                                    // closes window 2
		ingestAt(26, series("req_total{pod=b}", 15, 9), series("req_total{pod=c}", 16, 4)), // both for window 2
		flushWall(50),
	})
	if got, want := out.points(), []string{"req_total{}@20=5", "req_total{}@30=15", "req_total{}@40=15"}; !slices.Equal(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
	if got := a.Stats()[0].LateCounted; got != 2 {
		t.Errorf("%d late samples counted, want 2 (b's and c's)", got)
	}

	an, _, _ := runSteps(t, counterRule("lat"), []step{
		ingestAt(2, nseries("lat{pod=a}", at(1, nh(0, 1, 0, 1))), nseries("lat{pod=b}", at(1, nh(0, 1, 0, 1)))),
		ingestAt(25, nseries("lat{pod=a}", at(24, nh(0, 2, 0, 2)))),
		ingestAt(26, nseries("lat{pod=b}", at(15, nh(0, 3, 0, 3)))), // window 2 is closed
		flushWall(40),
	})
	if got := an.Stats()[0].LateCounted; got != 1 {
		t.Errorf("native: %d late samples counted, want 1", got)
	}
}
