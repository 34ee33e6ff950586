package reload

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cardinal-proxy/cardinal/config"
)

// recorder is an Applier that records what it applied and can be told to refuse.
type recorder struct {
	applied []*config.Config
	refuse  error
}

func (r *recorder) Apply(_, next *config.Config) error {
	if r.refuse != nil {
		return r.refuse
	}
	r.applied = append(r.applied, next)
	return nil
}

const valid = "downstream: {file: {path: '-'}}\nrules:\n  - {metric_name: x_total, type: counter, drop_labels: [pod]}\n"

func setup(t *testing.T) (*Reloader, *recorder, string, *strings.Builder, *prometheus.Registry) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cardinal.yaml")
	write(t, path, valid)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &strings.Builder{}
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	return New(path, cfg, rec, reg, slog.New(slog.NewTextHandler(logs, nil))), rec, path, logs, reg
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEveryOutcomeIsLoggedAndKept(t *testing.T) {
	r, rec, path, logs, reg := setup(t)
	if _, ok := r.Last(); ok {
		t.Error("an outcome before any reload")
	}

	write(t, path, valid+"  - {metric_name: y, type: gauge, drop_labels: [pod, ]\n")
	if err := r.Reload(); err == nil {
		t.Fatal("a broken file reloaded")
	}
	if o, _ := r.Last(); o.Err == nil || len(rec.applied) != 0 {
		t.Errorf("after a failure: outcome %+v, applied %d", o, len(rec.applied))
	}
	if testutil.ToFloat64(r.ok) != 0 || !strings.Contains(logs.String(), "level=ERROR msg=\"configuration reload failed") {
		t.Errorf("failure not in the metric or the log:\n%s", logs.String())
	}

	write(t, path, valid+"  - {metric_name: y, type: gauge, drop_labels: [pod]}\n")
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	o, _ := r.Last()
	if o.Err != nil || !o.Changed || len(rec.applied) != 1 || len(r.Config().Rules) != 2 {
		t.Errorf("after the fix: outcome %+v, applied %d, rules %d", o, len(rec.applied), len(r.Config().Rules))
	}
	if testutil.ToFloat64(r.ok) != 1 || !strings.Contains(logs.String(), "level=INFO msg=\"configuration reloaded\"") {
		t.Errorf("success after a failure not in the metric or the log:\n%s", logs.String())
	}

	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if o, _ := r.Last(); o.Changed || len(rec.applied) != 1 || !strings.Contains(logs.String(), "configuration reload: unchanged, nothing to apply") {
		t.Errorf("an unchanged file: outcome %+v, applied %d\n%s", o, len(rec.applied), logs.String())
	}
	if n, err := testutil.GatherAndCount(reg, "cardinal_config_last_reload_successful"); err != nil || n != 1 {
		t.Errorf("metric registered %d times: %v", n, err)
	}
}

func TestRefusedApplyKeepsTheOldConfiguration(t *testing.T) {
	r, rec, path, _, _ := setup(t)
	before := r.Config()
	rec.refuse = errors.New("rule state could not be built")
	write(t, path, valid+"  - {metric_name: y, type: gauge, drop_labels: [pod]}\n")
	if err := r.Reload(); err == nil || r.Config() != before {
		t.Errorf("err %v; config replaced: %v", err, r.Config() != before)
	}
}

func TestHandlerNeedsTheLifecycleFlagAndPOST(t *testing.T) {
	r, _, _, _, _ := setup(t)
	for _, tt := range []struct {
		enabled bool
		method  string
		want    int
	}{{false, "POST", http.StatusForbidden}, {true, "GET", http.StatusMethodNotAllowed}, {true, "POST", http.StatusOK}, {true, "PUT", http.StatusOK}} {
		rec := httptest.NewRecorder()
		r.Handler(tt.enabled).ServeHTTP(rec, httptest.NewRequest(tt.method, "/-/reload", nil))
		if rec.Code != tt.want {
			t.Errorf("enabled %v %s: %d, want %d", tt.enabled, tt.method, rec.Code, tt.want)
		}
	}
}
