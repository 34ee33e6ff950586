package deploytest

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

var dashboardFile = filepath.Join(deployDir, "grafana", "cardinal.json")

// dashboard is the part of a Grafana dashboard these tests read.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// grafanaVariables stands in for what Grafana substitutes before the query reaches
// Prometheus; variables inside label matcher strings ("$instance") parse as they are.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// dashboardQuery is one PromQL query of the dashboard, with where it is.
type dashboardQuery struct {
	where string
	expr  parser.Expr
}

func loadDashboard(t *testing.T) (dashboard, []dashboardQuery) {
	t.Helper()
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(readFile(t, dashboardFile))))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var queries []dashboardQuery
	parse := func(where, q string) {
		expr, err := parser.ParseExpr(grafanaVariables.Replace(q))
		if err != nil {
			t.Errorf("%s: %q does not parse as PromQL: %v", where, q, err)
			return
		}
		queries = append(queries, dashboardQuery{where, expr})
	}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			where := "panel " + p.Title
			if p.Type != "row" {
				if len(p.Targets) == 0 {
					t.Errorf("%s: no query", where)
				}
				if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
					t.Errorf("%s: the data source must be the ${datasource} variable, so the dashboard imports anywhere", where)
				}
			}
			for _, tg := range p.Targets {
				parse(where+" query "+tg.RefID, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	// label_values(selector, label) is Grafana's, not PromQL: its selector must parse.
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		sub := labelValues.FindStringSubmatch(q)
		if sub == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q)
			continue
		}
		parse("variable "+v.Name, sub[1])
	}
	return d, queries
}

// TestDashboardParses checks the dashboard's structure: JSON, unique panel ids, no two panels
// on the same spot, and every query PromQL that Prometheus's parser accepts.
func TestDashboardParses(t *testing.T) {
	d, queries := loadDashboard(t)
	if d.Title == "" || d.UID == "" {
		t.Errorf("title %q, uid %q: both needed for a stable import", d.Title, d.UID)
	}
	ids := map[int]string{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if other, dup := ids[p.ID]; dup {
				t.Errorf("panels %q and %q share id %d", p.Title, other, p.ID)
			}
			ids[p.ID] = p.Title
			for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
				for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
					if other, overlap := taken[cell{x, y}]; overlap {
						t.Errorf("panels %q and %q overlap at %d,%d", p.Title, other, x, y)
						return
					}
					taken[cell{x, y}] = p.Title
				}
			}
			if p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %q is wider than the 24 columns", p.Title)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if len(queries) < 30 {
		t.Errorf("%d queries: the dashboard lost its panels?", len(queries))
	}
}

// notOnDashboard are the metrics a running cardinal exports that the dashboard leaves out on
// purpose; any other metric cardinal adds must get a panel (or a place on this list).
var notOnDashboard = map[string]string{
	"cardinal_receiver_request_duration_seconds_count":   "the latency panel uses _bucket; the rate is on Requests",
	"cardinal_receiver_request_duration_seconds_sum":     "as above",
	"cardinal_downstream_send_duration_seconds_count":    "as above",
	"cardinal_downstream_send_duration_seconds_sum":      "as above",
	"cardinal_wal_fsync_duration_seconds_count":          "as above",
	"cardinal_wal_fsync_duration_seconds_sum":            "as above",
	"cardinal_wal_request_append_duration_seconds_count": "as above",
	"cardinal_wal_request_append_duration_seconds_sum":   "as above",
	"cardinal_wal_checkpoint_duration_seconds_count":     "as above",
	"cardinal_wal_checkpoint_duration_seconds_sum":       "as above",
	"cardinal_cluster_handoff_wait_seconds_count":        "the handoff panel shows the wait's p99 from _bucket",
	"cardinal_cluster_handoff_wait_seconds_sum":          "as above",
}

// TestDashboardMetricsAreExported checks every metric the dashboard names against the
// /metrics of a real cardinal (with a WAL, a downstream and a flushed window), so that a
// renamed metric breaks the build, not the dashboard; and that every cardinal_* metric
// exported is on the dashboard.
func TestDashboardMetricsAreExported(t *testing.T) {
	_, queries := loadDashboard(t)
	exp := exportedMetrics(t)
	used := map[string]bool{}
	for _, q := range queries {
		for _, m := range checkQuery(t, q.where, q.expr, exp) {
			used[m] = true
		}
	}
	var missing []string
	for m := range exp {
		if strings.HasPrefix(m, "cardinal_") && !used[m] && notOnDashboard[m] == "" {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("cardinal exports %s, which no dashboard panel shows (add one, or list it in notOnDashboard with the reason)", m)
	}
}
