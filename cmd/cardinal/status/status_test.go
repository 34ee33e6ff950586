package status

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cardinal-proxy/cardinal/aggregator"
	"github.com/cardinal-proxy/cardinal/cmd/cardinal/reload"
	"github.com/cardinal-proxy/cardinal/cmd/cardinal/router"
	"github.com/cardinal-proxy/cardinal/downstream/timescale"
	"github.com/cardinal-proxy/cardinal/rules"
)

type fixedRules []aggregator.RuleStats

func (r fixedRules) Stats() []aggregator.RuleStats { return r }

type queue struct{ full bool }

func (q *queue) Full() bool { return q.full }

// The page is compared byte for byte with golden files rendered before the page moved out
// of cmd/cardinal: moving or rewiring it must not change what an operator sees.
func TestPageMatchesGolden(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		golden string
	}{
		{
			name: "rules_and_a_full_queue",
			opts: Options{
				Version:    "1.2.3",
				ConfigFile: "/etc/cardinal/<cardinal>.yaml",
				Rules: fixedRules{
					{Name: "requests_by_job", Source: "rules.yaml:3", Type: "counter", InputSeries: 20, OutputSeries: 4, Samples: 123, Dropped: map[string]uint64{"limit": 2, "too_old": 0}, LastFlushDuration: 1500 * time.Microsecond},
					{Name: "st_mem_bytes", Source: "rules.yaml:9", Type: "gauge"},
				},
				Downstreams: []Downstream{
					{Name: "central", Kind: "remote_write", Queue: &queue{full: true}},
					{Name: "file", Kind: "file", Queue: &queue{}},
				},
			},
			golden: "full.golden.html",
		},
		{
			name:   "nothing_configured",
			opts:   Options{Version: "dev", ConfigFile: "cardinal.yaml", Rules: fixedRules{}},
			golden: "empty.golden.html",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", tt.golden))
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			NewHandler(tt.opts).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if got := rec.Body.String(); got != string(want) {
				t.Errorf("page differs from testdata/%s:\n%s", tt.golden, got)
			}
		})
	}
}

// A queue that fills after the handler was built shows as full at the next request, and a
// rule flushed a minute ago says so.
func TestPageReadsStateAtEachRequest(t *testing.T) {
	q := &queue{}
	rules := fixedRules{{Name: "r", Type: "counter", InputSeries: 3, OutputSeries: 1, LastFlush: time.Now().Add(-time.Minute)}}
	h := NewHandler(Options{Rules: rules, Downstreams: []Downstream{{Name: "central", Kind: "remote_write", Queue: q}}})
	render := func() string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		return rec.Body.String()
	}
	if body := render(); !strings.Contains(body, "<td>accepting</td>") || !regexp.MustCompile(`<td>1m\d+s ago</td>`).MatchString(body) || !strings.Contains(body, "3.0×") {
		t.Fatalf("page before the queue filled:\n%s", body)
	}
	q.full = true
	if body := render(); !strings.Contains(body, "full: receiver answers 503") {
		t.Fatalf("a full queue is not shown:\n%s", body)
	}
}

type lastReload struct{ o reload.Outcome }

func (l lastReload) Last() (reload.Outcome, bool) { return l.o, true }

func TestPageShowsTheLastReload(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    reload.Outcome
		want string
	}{
		{"failed", reload.Outcome{Time: time.Now(), Err: errors.New("cardinal.yaml:4: unknown type \"countr\"")}, "failed; the previous configuration stays in force</span></p>\n<pre class=\"full\">cardinal.yaml:4: unknown type &#34;countr&#34;</pre>"},
		{"applied", reload.Outcome{Time: time.Now(), Changed: true}, "applied."},
		{"unchanged", reload.Outcome{Time: time.Now()}, "unchanged, nothing to apply."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			NewHandler(Options{Rules: fixedRules{}, Reloads: lastReload{tt.o}}).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if !strings.Contains(rec.Body.String(), "Last reload 0s ago: ") || !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("page lacks %q:\n%s", tt.want, rec.Body.String())
			}
		})
	}
}

type walState struct{ cp *router.CheckpointResult }

func (w walState) WALStatus() (uint64, uint64, *router.CheckpointResult, bool) {
	return 7, 42, w.cp, true
}

func TestPageShowsTheWAL(t *testing.T) {
	for _, tt := range []struct {
		name string
		cp   *router.CheckpointResult
		want string
	}{
		{"before_any_checkpoint", nil, "Entries 7 to 42 on disk. No checkpoint yet."},
		{"checkpointed", &router.CheckpointResult{Time: time.Now(), Index: 40}, "Entries 7 to 42 on disk. Last checkpoint 0s ago at entry 40."},
		{"failed", &router.CheckpointResult{Time: time.Now(), Index: 41, Err: errors.New("disk full")}, "at entry 41: <span class=\"full\">failed</span></p>\n<pre class=\"full\">disk full</pre>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			NewHandler(Options{Rules: fixedRules{}, WAL: walState{tt.cp}}).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("page lacks %q:\n%s", tt.want, rec.Body.String())
			}
		})
	}
}

// The rules' no-op warnings are listed above the rules, each naming its rule, and escaped.
func TestPageShowsRuleWarnings(t *testing.T) {
	rules := fixedRules{
		{Name: "a", Type: "counter", Warnings: []string{`rule "a" (rules.yaml:3) reduces nothing: its 5 input series make 5 output series; drop more`}},
		{Name: "b", Type: "gauge"},
		{Name: "c", Type: "gauge", Warnings: []string{`rule "c" (rules.yaml:9): drop_labels <pod> never occurs in its 2 input series: dropping it changes nothing`}},
	}
	rec := httptest.NewRecorder()
	NewHandler(Options{Rules: rules}).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	for _, want := range []string{
		"<h2>Warnings</h2>",
		`<li class="warn">rule &#34;a&#34; (rules.yaml:3) reduces nothing: its 5 input series make 5 output series; drop more</li>`,
		`<li class="warn">rule &#34;c&#34; (rules.yaml:9): drop_labels &lt;pod&gt; never occurs`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	rec = httptest.NewRecorder()
	NewHandler(Options{Rules: fixedRules{{Name: "b", Type: "gauge"}}}).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if strings.Contains(rec.Body.String(), "Warnings") {
		t.Errorf("a page with no warnings has a Warnings section:\n%s", rec.Body.String())
	}
}

type jobs []timescale.JobStatus

func (j jobs) Jobs() []timescale.JobStatus { return j }

// The SQL sink's TimescaleDB jobs are listed under its downstream, a failing one in red with
// its error; a downstream without jobs adds nothing (the golden pages).
func TestPageShowsTheDatabaseJobs(t *testing.T) {
	now := time.Now()
	h := NewHandler(Options{Rules: fixedRules{}, Downstreams: []Downstream{
		{Name: "metrics-db", Kind: "timescaledb", Queue: &queue{}, Jobs: jobs{
			{ID: 1000, Kind: "compression", LastRun: now.Add(-time.Minute), LastRunFailed: true, Failures: 3,
				LastError: `cannot drop portal "" while it is being set up (SQLSTATE 24000)`, LastErrorAt: now.Add(-time.Minute)},
			{ID: 1001, Kind: "retention", LastRun: now.Add(-time.Hour), LastSuccess: now.Add(-time.Hour)},
		}},
		{Name: "plain-db", Kind: "timescaledb", Queue: &queue{}, Jobs: jobs{}},
	}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body := rec.Body.String()
	for _, want := range []string{
		"<h3>metrics-db: TimescaleDB jobs</h3>",
		`<td>compression</td><td class="num">1000</td><td>1m0s ago</td><td>never</td><td class="num">3</td>`,
		`<span class="full">failing: cannot drop portal &#34;&#34; while it is being set up (SQLSTATE 24000)</span>`,
		`<td>retention</td><td class="num">1001</td><td>1h0m0s ago</td><td>1h0m0s ago</td><td class="num">0</td>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, "plain-db: TimescaleDB jobs") {
		t.Errorf("a downstream without jobs has a jobs table:\n%s", body)
	}
}

type haGroups []aggregator.HAGroup

func (g haGroups) HAGroups() []aggregator.HAGroup { return g }

// The HA elections are listed, with each ha rule's deduplicated samples; without ha rules
// or groups the section is absent.
func TestPageShowsTheHAGroups(t *testing.T) {
	get := func(o Options) string {
		rec := httptest.NewRecorder()
		NewHandler(o).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		return rec.Body.String()
	}
	if body := get(Options{Rules: fixedRules{{Name: "plain"}}, HA: haGroups{}}); strings.Contains(body, "HA groups") {
		t.Errorf("HA section without ha rules:\n%s", body)
	}
	ha := &rules.HA{GroupLabel: "prometheus", ReplicaLabel: "prometheus_replica", FailoverTimeout: 30 * time.Second}
	body := get(Options{
		Rules: fixedRules{{Name: "req", HA: ha, HADeduplicated: 1234, HAUnnamed: 5}, {Name: "plain"}},
		HA: haGroups{{GroupLabel: "prometheus", ReplicaLabel: "prometheus_replica", Group: "monitoring/k8s",
			Elected: "prometheus-k8s-1", Newest: time.Now(), Failovers: 2}},
	})
	for _, want := range []string{
		"<td>prometheus</td><td>monitoring/k8s</td><td>prometheus_replica</td><td>prometheus-k8s-1</td><td>0s ago</td><td class=\"num\">2</td>",
		"<td>req</td><td>prometheus</td><td>prometheus_replica</td><td>30s</td><td class=\"num\">1234</td><td class=\"num\">5</td>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<td>plain</td><td>prometheus") {
		t.Error("a rule without ha is listed among the HA rules")
	}
}
