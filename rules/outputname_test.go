package rules

import "testing"

func TestOutputMetricName(t *testing.T) {
	tests := []struct {
		name          string
		rule          Rule
		input, output string
		want          string
	}{
		{"default_output_keeps_the_name", Rule{Type: Counter, BaseName: "x_total", Outputs: []string{"rate", "total"}}, "x_total", "total", "x_total"},
		{"other_output_gets_a_suffix", Rule{Type: Counter, BaseName: "x_total", Outputs: []string{"rate", "total"}}, "x_total", "rate", "x_total:rate"},
		{"lone_output_keeps_the_name", Rule{Type: Counter, BaseName: "x_total", Outputs: []string{"rate"}}, "x_total", "rate", "x_total"},
		{"without_the_default_the_first_keeps_the_name", Rule{Type: Gauge, BaseName: "mem", Outputs: []string{"avg", "max"}}, "mem", "avg", "mem"},
		{"without_the_default_the_others_get_a_suffix", Rule{Type: Gauge, BaseName: "mem", Outputs: []string{"avg", "max"}}, "mem", "max", "mem:max"},
		{"gauge_default_is_sum", Rule{Type: Gauge, BaseName: "mem", Outputs: []string{"max", "sum"}}, "mem", "sum", "mem"},
		{"output_name_replaces_the_name", Rule{Type: Gauge, BaseName: "mem", OutputName: "cluster_mem", Outputs: []string{"avg", "sum"}}, "mem", "avg", "cluster_mem:avg"},
		{"histogram_output_name_keeps_the_component", Rule{Type: Histogram, BaseName: "lat", OutputName: "lat_agg", Outputs: []string{"total"}}, "lat_count", "total", "lat_agg_count"},
		{"histogram_suffix_goes_last", Rule{Type: Histogram, BaseName: "lat", Outputs: []string{"rate", "total"}}, "lat_bucket", "rate", "lat_bucket:rate"},
		{"regexp_rule_keeps_each_input_name", Rule{Type: Counter, Outputs: []string{"total"}}, "a_total", "total", "a_total"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rule.OutputMetricName(tt.input, tt.output); got != tt.want {
				t.Errorf("OutputMetricName(%q, %q) = %q, want %q", tt.input, tt.output, got, tt.want)
			}
		})
	}
}
