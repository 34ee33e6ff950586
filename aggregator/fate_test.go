package aggregator

import "testing"

// TestOutputFate pins the decision both window closes (float and native histogram) take for
// each output series: emit, end, or stay quiet.
func TestOutputFate(t *testing.T) {
	names := map[fate]string{fateQuiet: "quiet", fateEmit: "emit", fateEnd: "end"}
	const k = 5
	for _, c := range []struct {
		name                 string
		counter              bool
		firstK               int64
		live, samples, count int32
		emit                 bool
		want                 fate
	}{
		{"counter_live_input_emits_total_without_samples", true, 3, 1, 0, 0, true, fateEmit},
		{"counter_last_input_gone_still_emits_its_window", true, 3, 0, 2, 0, true, fateEmit},
		{"counter_no_input_no_sample_ends", true, 3, 0, 0, 0, true, fateEnd},
		{"counter_before_its_first_window_is_quiet", true, k + 1, 1, 0, 0, true, fateQuiet},
		{"counter_before_its_first_window_without_inputs_ends", true, k + 1, 0, 0, 0, true, fateEnd},
		{"counter_in_partial_first_window_is_quiet", true, k, 1, 1, 0, false, fateQuiet},
		{"counter_ignores_gauge_count", true, 3, 0, 0, 4, true, fateEnd},
		{"gauge_with_values_emits", false, 3, 2, 0, 2, true, fateEmit},
		{"gauge_live_input_without_value_is_quiet", false, 3, 1, 1, 0, true, fateQuiet},
		{"gauge_without_inputs_or_values_ends", false, 3, 0, 3, 0, true, fateEnd},
		{"gauge_in_partial_first_window_is_quiet", false, k, 2, 0, 2, false, fateQuiet},
		{"gauge_ends_even_in_partial_first_window", false, k, 0, 0, 0, false, fateEnd},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &ruleState{counter: c.counter}
			if got := r.outputFate(k, c.firstK, c.live, c.samples, c.count, c.emit); got != c.want {
				t.Errorf("outputFate = %s, want %s", names[got], names[c.want])
			}
		})
	}
}
