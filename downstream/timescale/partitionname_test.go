package timescale

import (
	"testing"
	"time"
)

func TestPartitionNames(t *testing.T) {
	tests := []struct {
		name   string
		millis int64
		want   string
	}{
		{"last_millisecond_of_a_day", millis("2021-03-01T23:59:59.999Z"), "samples_p20210301"},
		{"midnight_starts_the_next_day", millis("2021-03-02T00:00:00Z"), "samples_p20210302"},
		{"utc_not_local_time", millis("2021-03-02T01:00:00+02:00"), "samples_p20210301"},
		{"before_the_epoch", millis("1969-12-31T23:59:59.999Z"), "samples_p19691231"},
		{"leap_day", millis("2024-02-29T12:00:00Z"), "samples_p20240229"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dayOfMillis(tt.millis)
			if got := partitionName(d); got != tt.want {
				t.Errorf("partitionName = %q, want %q", got, tt.want)
			}
			if d != dayOf(time.UnixMilli(tt.millis)) {
				t.Errorf("dayOfMillis = %d, dayOf = %d", d, dayOf(time.UnixMilli(tt.millis)))
			}
			if back, ok := parsePartitionName(tt.want); !ok || back != d {
				t.Errorf("parsePartitionName(%q) = %d, %v; want %d", tt.want, back, ok, d)
			}
		})
	}
	for _, other := range []string{"samples", "samples_default", "samples_p2021030", "samples_p2021x301", "series"} {
		if _, ok := parsePartitionName(other); ok {
			t.Errorf("parsePartitionName(%q) accepted a table cardinal did not create", other)
		}
	}
}
