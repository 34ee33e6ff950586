package downstream

import (
	"net/http"
	"testing"
	"time"
)

func TestBackoffGrowsExponentiallyUpToMax(t *testing.T) {
	b := Backoff{Min: 30 * time.Millisecond, Max: 5 * time.Second}
	tests := []struct {
		name    string
		attempt int
		want    time.Duration
	}{
		{"first_retry_uses_min", 0, 30 * time.Millisecond},
		{"doubles", 1, 60 * time.Millisecond},
		{"doubles_again", 4, 480 * time.Millisecond},
		{"capped_at_max", 8, 5 * time.Second},
		{"no_overflow_after_many_attempts", 1000, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.ceiling(tt.attempt); got != tt.want {
				t.Errorf("ceiling(%d) = %v, want %v", tt.attempt, got, tt.want)
			}
		})
	}
}

func TestBackoffJitterSpansZeroToCeiling(t *testing.T) {
	var asked []int64
	lowest := Backoff{Min: time.Second, Max: time.Minute, randN: func(n int64) int64 { asked = append(asked, n); return 0 }}
	highest := Backoff{Min: time.Second, Max: time.Minute, randN: func(n int64) int64 { return n - 1 }}
	if got := lowest.Delay(2, 0); got != 0 {
		t.Errorf("lowest draw = %v, want 0 (full jitter)", got)
	}
	if asked[0] != int64(4*time.Second) {
		t.Errorf("drew from [0, %v), want [0, 4s)", time.Duration(asked[0]))
	}
	if got := highest.Delay(2, 0); got != 4*time.Second-1 {
		t.Errorf("highest draw = %v, want just under 4s", got)
	}
	zero := Backoff{randN: func(int64) int64 { t.Fatal("drew from an empty range"); return 0 }}
	if got := zero.Delay(3, 0); got != 0 {
		t.Errorf("zero backoff = %v", got)
	}
}

func TestBackoffHonoursAPositiveRetryAfter(t *testing.T) {
	b := Backoff{Min: time.Second, Max: time.Minute, randN: func(int64) int64 { t.Fatal("drew a jittered wait despite Retry-After"); return 0 }}
	if got := b.Delay(5, 7*time.Second); got != 7*time.Second {
		t.Errorf("Delay with Retry-After 7s = %v, want 7s", got)
	}
	jittered := Backoff{Min: time.Second, Max: time.Minute, randN: func(n int64) int64 { return n - 1 }}
	if got := jittered.Delay(0, 0); got != time.Second-1 {
		t.Errorf("Delay with Retry-After 0 = %v, want the jittered wait (just under 1s)", got)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"absent", "", 0, false},
		{"seconds", "7", 7 * time.Second, true},
		{"zero", "0", 0, true},
		{"capped", "86400", maxRetryAfter, true},
		{"negative_ignored", "-3", 0, false},
		{"http_date", now.Add(20 * time.Second).Format(http.TimeFormat), 20 * time.Second, true},
		{"date_in_the_past", now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"garbage_ignored", "soon", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.value != "" {
				h.Set("Retry-After", tt.value)
			}
			got, ok := RetryAfter(h, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
