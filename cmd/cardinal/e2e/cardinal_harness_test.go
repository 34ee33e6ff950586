package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
)

// TestCardinalHarness_starts_takes_writes_and_stops_cleanly proves the cardinal helpers
// against the built binary: startCardinal waits for readiness, pushRW and `cardinal loadgen`
// reach its receiver, and Stop delivers SIGTERM and reports a clean exit. What cardinal
// writes downstream is for the semantic tests.
func TestCardinalHarness_starts_takes_writes_and_stops_cleanly(t *testing.T) {
	prom := startPrometheus(t, prometheusOptions{})
	c := startCardinal(t, fmt.Sprintf(`
aggregator:
  flush_interval: 15s
  downstream_url: %q
rules:
  - metric_name: e2e_requests_total
    type: counter
    drop_labels: [pod, instance]
`, prom.WriteURL))

	now := time.Now()
	code := pushRW(t, c.WriteURL, []prompb.TimeSeries{{
		Labels:  labelSet("e2e_requests_total", "job", "e2e", "pod", "a"),
		Samples: []prompb.Sample{{Value: 1, Timestamp: now.UnixMilli()}},
	}})
	if code/100 != 2 {
		t.Fatalf("push to cardinal: status %d, want 2xx", code)
	}

	rep := runLoadgen(t, "--url="+c.WriteURL, "--requests=6", "--metrics=2", "--series=100",
		"--samples-per-request=100", "--pid="+fmt.Sprint(c.PID()))
	if rep.Requests != 6 || rep.Samples != 600 || len(rep.Errors) != 0 {
		t.Fatalf("loadgen: %d requests, %d samples acknowledged, errors %v; want 6, 600, none", rep.Requests, rep.Samples, rep.Errors)
	}
	if rep.Receiver == nil || rep.Receiver.PID != c.PID() || rep.Receiver.RSSBytes <= 0 {
		t.Fatalf("loadgen receiver report %+v: want cardinal's pid and RSS", rep.Receiver)
	}

	if code := c.Stop(); code != 0 {
		t.Fatalf("cardinal exited with %d after SIGTERM, want 0", code)
	}
	resp, err := http.Get(c.URL + "/-/ready")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("cardinal still answers after Stop: %d", resp.StatusCode)
	}
	c.Start() // the same flags, port and config again
	if code := c.Stop(); code != 0 {
		t.Fatalf("restarted cardinal exited with %d, want 0", code)
	}
}
