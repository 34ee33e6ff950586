package loadgen

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseConfig_rejects_bad_flags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"mix_unknown_type", []string{"--mix=counter=1,summary=1"}, "summary"},
		{"mix_all_zero", []string{"--mix=counter=0"}, "positive"},
		{"churn_above_one", []string{"--churn=1.5"}, "--churn"},
		{"labels_reserved_name", []string{"--labels=pod=x"}, "generator sets itself"},
		{"labels_duplicate", []string{"--labels=a=1,a=2"}, "twice"},
		{"labels_bad_name", []string{"--labels=a:b=1"}, "valid label name"},
		{"buckets_not_increasing", []string{"--buckets=1,0.5"}, "increasing"},
		{"value_length_too_short", []string{"--series=100000", "--label-value-length=8"}, "too short"},
		{"value_length_too_short_for_churn", []string{"--churn=0.1", "--label-value-length=10"}, "churn"},
		{"output_unknown", []string{"--output=yaml"}, "--output"},
		{"unknown_flag", []string{"--nope"}, "nope"},
		{"positional_argument", []string{"extra"}, "unexpected argument"},
		{"scheme", []string{"--url=ftp://127.0.0.1/"}, "scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.args, io.Discard)
			if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a usage error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestParseConfig_bounds_every_run(t *testing.T) {
	if cfg := mustConfig(t); cfg.duration != defaultDuration {
		t.Errorf("no bound given: duration %v, want the default %v", cfg.duration, defaultDuration)
	}
	if cfg := mustConfig(t, "--requests=5"); cfg.duration != 0 {
		t.Errorf("--requests given: duration %v, want none", cfg.duration)
	}
	if cfg := mustConfig(t, "--history=1h"); cfg.duration != 0 {
		t.Errorf("--history given: duration %v, want none", cfg.duration)
	}
}

func TestApportion_splits_metrics_by_weight(t *testing.T) {
	for _, tc := range []struct {
		n       int
		weights []float64
		want    [3]int
	}{
		{10, []float64{1, 0, 0}, [3]int{10, 0, 0}},
		{10, []float64{1, 1, 1}, [3]int{4, 3, 3}},
		{100, []float64{0.7, 0.2, 0.1}, [3]int{70, 20, 10}},
		{1, []float64{0, 0, 5}, [3]int{0, 0, 1}},
	} {
		got := apportion(tc.n, tc.weights)
		if [3]int(got) != tc.want {
			t.Errorf("apportion(%d, %v) = %v, want %v", tc.n, tc.weights, got, tc.want)
		}
	}
}

func TestCheckTarget_allows_only_loopback(t *testing.T) {
	for host, ok := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "localhost": true, "[::1]": true, "[::ffff:127.0.0.1]": true,
		"10.0.0.1": false, "192.168.1.10": false, "8.8.8.8": false, "example.com": false, "[fe80::1]": false, "0.0.0.0": false,
	} {
		cfg := mustConfig(t, "--url=http://"+host+":9091/api/v1/write", "--requests=1")
		if err := checkTarget(cfg.url, false); (err == nil) != ok {
			t.Errorf("%s: err = %v, want allowed=%v", host, err, ok)
		}
		if err := checkTarget(cfg.url, true); err != nil {
			t.Errorf("%s with --allow-remote: %v", host, err)
		}
	}
	if err := loopbackOnly("tcp", "10.0.0.1:80", nil); !errors.Is(err, errRemoteTarget) {
		t.Errorf("dialer allowed 10.0.0.1: %v", err)
	}
	if err := loopbackOnly("tcp", "127.0.0.1:80", nil); err != nil {
		t.Errorf("dialer refused loopback: %v", err)
	}
}

func TestRun_derives_the_interval_from_the_rate_in_live_mode(t *testing.T) {
	rc := newReceiver(t, nil)
	// 2 x 500 series at 4000 samples/s: one round every 250ms keeps timestamps on the clock.
	rep, err := runJSON(t, rc.URL, time.Now, "--rate=4000", "--requests=2", "--metrics=2", "--series=500", "--samples-per-request=1000")
	if err != nil {
		t.Fatal(err)
	}
	if rep.IntervalSeconds != 0.25 {
		t.Fatalf("interval %vs, want 0.25s", rep.IntervalSeconds)
	}
}
