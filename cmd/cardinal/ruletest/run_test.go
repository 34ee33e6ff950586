package ruletest

import (
	"strings"
	"testing"
)

func TestRunPassingFile(t *testing.T) {
	var out strings.Builder
	if !Run([]string{"testdata/pass_test.yaml"}, &out) {
		t.Fatalf("tests failed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "SUCCESS: 2 tests") {
		t.Errorf("output: %s", out.String())
	}
}

func TestRunFailingFileShowsReadableDiff(t *testing.T) {
	var out strings.Builder
	if Run([]string{"testdata/fail_test.yaml"}, &out) {
		t.Fatalf("a wrong expectation passed:\n%s", out.String())
	}
	for _, want := range []string{
		"FAILED: wrong expectation",
		`line 9: http_requests_total{job="api"} at 2m: expected 999, got 80`,
		`output samples of http_requests_total{job="api"}:`,
		`http_requests_total{job="nope"} at 2m: expected 1, got no value`,
		"no such output series; the outputs were:",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunMissingFileFails(t *testing.T) {
	var out strings.Builder
	if Run([]string{"testdata/absent_test.yaml"}, &out) {
		t.Fatal("a missing file passed")
	}
}
