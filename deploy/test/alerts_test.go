package deploytest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"text/template"

	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite generated files (the PrometheusRule) from their sources")

var (
	ruleFile           = filepath.Join(deployDir, "alerts", "cardinal.rules.yaml")
	ruleTestFile       = filepath.Join(deployDir, "alerts", "cardinal.rules.test.yaml")
	prometheusRuleFile = filepath.Join(deployDir, "alerts", "cardinal.prometheusrule.yaml")
	readme             = filepath.Join(repoRoot, "README.md")
)

// ruleGroups is a Prometheus rule file, as far as these tests read it.
type ruleGroups struct {
	Groups []struct {
		Name  string         `json:"name"`
		Rules []alertingRule `json:"rules"`
	} `json:"groups"`
}

type alertingRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func loadAlerts(t *testing.T) map[string]alertingRule {
	t.Helper()
	var g ruleGroups
	if err := yaml.UnmarshalStrict(readFile(t, ruleFile), &g); err != nil {
		t.Fatalf("%s: %v", ruleFile, err)
	}
	alerts := map[string]alertingRule{}
	for _, grp := range g.Groups {
		for _, r := range grp.Rules {
			if r.Alert == "" {
				t.Errorf("%s: group %s has a recording rule or an unnamed alert: %+v", ruleFile, grp.Name, r)
				continue
			}
			if _, dup := alerts[r.Alert]; dup {
				t.Errorf("%s: alert %s defined twice", ruleFile, r.Alert)
			}
			alerts[r.Alert] = r
		}
	}
	if len(alerts) == 0 {
		t.Fatalf("%s: no alerts", ruleFile)
	}
	return alerts
}

// TestAlertRulesPassPromtool runs `promtool check rules` on the rule file and `promtool test
// rules` on its unit tests, after filling in each expected alert's annotations from the
// rule's templates (so the texts are written once, and a template that does not expand
// fails here). It also insists that every alert has a test in which it fires and one in
// which it must stay silent.
func TestAlertRulesPassPromtool(t *testing.T) {
	promtool := requireTool(t, "promtool", "install it (Debian: apt-get install prometheus) to test the alerting rules")
	alerts := loadAlerts(t)

	if out, err := exec.Command(promtool, "check", "rules", ruleFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", ruleFile, err, out)
	}

	var tests map[string]any
	if err := yaml.Unmarshal(readFile(t, ruleTestFile), &tests); err != nil {
		t.Fatalf("%s: %v", ruleTestFile, err)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range asList(tests["tests"]) {
		tc := tc.(map[string]any)
		for _, art := range asList(tc["alert_rule_test"]) {
			art := art.(map[string]any)
			name, _ := art["alertname"].(string)
			rule, ok := alerts[name]
			if !ok {
				t.Errorf("%s: test %q names alert %q, which %s does not define", ruleTestFile, tc["name"], name, ruleFile)
				continue
			}
			exp := asList(art["exp_alerts"])
			if len(exp) == 0 {
				silent[name] = true
			} else {
				fires[name] = true
			}
			for _, e := range exp {
				e := e.(map[string]any)
				labels := map[string]string{}
				for k, v := range e["exp_labels"].(map[string]any) {
					labels[k] = fmt.Sprint(v)
				}
				ann, err := expandAnnotations(rule, labels)
				if err != nil {
					t.Fatalf("alert %s: %v", name, err)
				}
				e["exp_annotations"] = ann
			}
		}
	}
	for name := range alerts {
		if !fires[name] {
			t.Errorf("alert %s has no test in which it fires (%s)", name, ruleTestFile)
		}
		if !silent[name] {
			t.Errorf("alert %s has no test in which it must stay silent (%s)", name, ruleTestFile)
		}
	}

	dir := t.TempDir()
	filled, err := yaml.Marshal(tests)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		filepath.Base(ruleFile):     readFile(t, ruleFile),
		filepath.Base(ruleTestFile): filled,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(promtool, "test", "rules", filepath.Base(ruleTestFile))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules %s (annotations filled in): %v\n%s", ruleTestFile, err, out)
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// expandAnnotations renders an alert's annotations for one firing alert, as Prometheus does:
// $labels are the alert's labels without the rule's own and alertname. The rules use $labels
// only ($value would make the expected texts depend on the input numbers).
func expandAnnotations(rule alertingRule, alertLabels map[string]string) (map[string]string, error) {
	labels := map[string]string{}
	for k, v := range alertLabels {
		if _, static := rule.Labels[k]; !static && k != "alertname" {
			labels[k] = v
		}
	}
	out := map[string]string{}
	for name, text := range rule.Annotations {
		tmpl, err := template.New(name).Option("missingkey=error").Parse("{{$labels := .Labels}}" + text)
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %w", name, err)
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, map[string]any{"Labels": labels}); err != nil {
			return nil, fmt.Errorf("annotation %s with labels %v: %w", name, labels, err)
		}
		out[name] = b.String()
	}
	return out, nil
}

// TestAlertRulesTellTheOnCallWhatToDo checks each alert's metadata: a severity, a summary, a
// description, and a runbook_url that points to a section of the README that exists.
func TestAlertRulesTellTheOnCallWhatToDo(t *testing.T) {
	anchors := markdownAnchors(string(readFile(t, readme)))
	const base = "https://github.com/cardinal-proxy/cardinal/blob/main/README.md#"
	for name, r := range loadAlerts(t) {
		switch r.Labels["severity"] {
		case "critical", "warning", "info":
		default:
			t.Errorf("%s: severity %q, want critical, warning or info", name, r.Labels["severity"])
		}
		if !strings.HasPrefix(name, "Cardinal") {
			t.Errorf("%s: alert names start with Cardinal, so they group in Alertmanager", name)
		}
		if len(r.Annotations["summary"]) < 20 || len(r.Annotations["description"]) < 100 {
			t.Errorf("%s: summary %q and description %q: both are needed, the description saying what to do", name, r.Annotations["summary"], r.Annotations["description"])
		}
		url := r.Annotations["runbook_url"]
		anchor, ok := strings.CutPrefix(url, base)
		if !ok || !anchors[anchor] {
			t.Errorf("%s: runbook_url %q is not %s<a heading of the README>", name, url, base)
		}
		expr, err := parser.ParseExpr(r.Expr)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, m := range metricNames(expr) {
			if !strings.HasPrefix(m, "cardinal_") && m != "process_resident_memory_bytes" && m != "process_start_time_seconds" && m != "go_gc_gomemlimit_bytes" {
				t.Errorf("%s: unexpected metric %s", name, m)
			}
		}
	}
}

// TestAlertRulesUseExportedMetrics checks every alert's expression against a real
// cardinal's /metrics (metrics, labels and the values matched), so that renaming a metric
// or a reason breaks the build, not the alert.
func TestAlertRulesUseExportedMetrics(t *testing.T) {
	exp := exportedMetrics(t)
	for name, r := range loadAlerts(t) {
		expr, err := parser.ParseExpr(r.Expr)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkQuery(t, "alert "+name, expr, exp)
	}
}

// markdownAnchors returns the GitHub anchors of a Markdown document's headings.
func markdownAnchors(md string) map[string]bool {
	drop := regexp.MustCompile(`[^\p{L}\p{N}\- _]`)
	anchors := map[string]bool{}
	inFence := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		h = strings.ToLower(drop.ReplaceAllString(h, ""))
		anchors[strings.ReplaceAll(h, " ", "-")] = true
	}
	return anchors
}

// metricNames returns the metric names an expression selects.
func metricNames(expr parser.Expr) []string {
	var names []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, metricName(vs))
		}
		return nil
	})
	return names
}

// TestPrometheusRuleMatchesRuleFile checks that the PrometheusRule for the Prometheus
// Operator carries exactly the rule file's groups (go test -run PrometheusRule -update
// rewrites it from the rule file).
func TestPrometheusRuleMatchesRuleFile(t *testing.T) {
	var groups map[string]any
	if err := yaml.Unmarshal(readFile(t, ruleFile), &groups); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"apiVersion": "monitoring.coreos.com/v1",
		"kind":       "PrometheusRule",
		"metadata": map[string]any{
			"name":   "cardinal",
			"labels": map[string]any{"app.kubernetes.io/name": "cardinal"},
		},
		"spec": groups,
	}
	if *update {
		b, err := yaml.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		header := "# Generated from cardinal.rules.yaml by `go test -run PrometheusRule -update` in deploy/test:\n" +
			"# edit the rule file, not this one. For the Prometheus Operator: kubectl apply -f this file\n" +
			"# (its ruleSelector must match the labels below).\n"
		if err := os.WriteFile(prometheusRuleFile, append([]byte(header), b...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var got map[string]any
	if err := yaml.Unmarshal(readFile(t, prometheusRuleFile), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s is not the PrometheusRule of %s: run go test -run PrometheusRule -update in deploy/test", prometheusRuleFile, ruleFile)
	}
}
