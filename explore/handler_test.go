package explore

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, url string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	return rec.Code, rec.Body.String()
}

func TestHandlerServesPageAndAPI(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	e := New(DefaultConfig(), nil, clk.now)
	e.StartScan()
	send(e, 1, population{name: "a_total", series: 500, instances: 10, groups: 2}, population{name: "b", series: 50, instances: 5, groups: 5})
	clk.t = clk.t.Add(time.Minute)
	e.EndScan()
	cover := func(names []string) map[string][]RuleCoverage {
		return map[string][]RuleCoverage{"a_total": {{Rule: "a_total", InputSeries: 500, OutputSeries: 20, Reduction: 25}}}
	}
	h := NewHandler(e, cover, nil)

	code, body := get(t, h, APIPath+"?limit=1")
	var r Response
	if err := json.Unmarshal([]byte(body), &r); code != 200 || err != nil || r.Status != "success" {
		t.Fatalf("API: %d %v %s", code, err, body)
	}
	if d := r.Data; !d.Enabled || d.Result == nil || len(d.Result.Metrics) != 1 || d.Result.Metrics[0].Name != "a_total" ||
		len(d.Result.Metrics[0].Rules) != 1 || d.Result.MetricsTotal != 2 || d.ScanFor != "2m" {
		t.Errorf("API ?limit=1: %+v", d)
	}
	_, body = get(t, h, APIPath+"?metric=b")
	r = Response{}
	if err := json.Unmarshal([]byte(body), &r); err != nil || len(r.Data.Result.Metrics) != 1 || r.Data.Result.Metrics[0].Name != "b" || r.Data.Result.Metrics[0].Rules != nil {
		t.Errorf("API ?metric=b: %s", body)
	}
	for _, bad := range []string{"?limit=0", "?limit=x"} {
		if code, body := get(t, h, APIPath+bad); code != 400 || !strings.Contains(body, `"status":"error"`) {
			t.Errorf("API %s: %d %s, want 400", bad, code, body)
		}
		if code, _ := get(t, h, PagePath+bad); code != 400 {
			t.Errorf("page %s: %d, want 400", bad, code)
		}
	}

	_, page := get(t, h, PagePath)
	for _, want := range []string{"Top metrics by series", `href="?metric=a_total"`, "a_total: 500 → 20 (25.0×)", "<td>pod</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	_, page = get(t, h, PagePath+"?metric=nope")
	if !strings.Contains(page, "No metric named <code>nope</code>") {
		t.Errorf("page for an unknown metric:\n%s", page)
	}
	_, page = get(t, NewHandler(nil, nil, nil), PagePath)
	if !strings.Contains(page, "switched off") {
		t.Errorf("page of a switched-off explorer:\n%s", page)
	}
}
