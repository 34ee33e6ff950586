package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEveryCommandHasHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"},
		{"check", "config", "--help"}, {"check", "rules", "--help"}, {"test", "rules", "--help"},
		{"loadgen", "--help"}, {"version", "--help"},
	} {
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			var out, errOut strings.Builder
			if code := run(args, &out, &errOut); code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
			}
			if !strings.Contains(strings.ToLower(out.String()), "usage") {
				t.Errorf("no usage on stdout:\n%s", out.String())
			}
		})
	}
}

func TestServerHelpListsTheFlags(t *testing.T) {
	var out, errOut strings.Builder
	run([]string{"--help"}, &out, &errOut)
	for _, flag := range []string{"-config.file", "-web.listen-address", "-log.level", "-shutdown.timeout"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("--help does not list %s:\n%s", flag, out.String())
		}
	}
}

// Every wrong invocation prints one line saying what was wrong and what would be right,
// then the usage, and exits 2.
func TestWrongInvocationsSayWhatWouldBeRight(t *testing.T) {
	tests := []struct {
		args []string
		want string // the first line
	}{
		{[]string{"configs/quickstart.yaml"}, `cardinal: unexpected argument "configs/quickstart.yaml"; did you mean --config.file=configs/quickstart.yaml?`},
		{[]string{"chek", "config", "x"}, `cardinal: unknown command "chek"; did you mean "check"?`},
		{[]string{"run"}, `cardinal: unknown command "run": to run the proxy, give no command: cardinal --config.file=cardinal.yaml`},
		{[]string{"check"}, `cardinal check: say what: config or rules`},
		{[]string{"check", "conf", "x"}, `cardinal check: unknown "conf"; did you mean "check config"?`},
		{[]string{"test", "rule", "x"}, `cardinal test: unknown "rule"; did you mean "test rules"?`},
		{[]string{"check", "config"}, `cardinal check config: no file given`},
		{[]string{"test", "rules", "--verbose", "x"}, `cardinal test rules: unknown flag --verbose (it takes no flags)`},
		{[]string{"--web.listen-adress=:1"}, `cardinal: unknown flag --web.listen-adress; did you mean --web.listen-address?`},
		{[]string{"--config.file"}, `cardinal: flag needs an argument: -config.file`},
		{[]string{"--log.level=verbose", "--config.file=/nonexistent"}, `cardinal: --log.level: "verbose" is not a level: use debug, info, warn or error`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "_"), func(t *testing.T) {
			var out, errOut strings.Builder
			if code := run(tt.args, &out, &errOut); code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			first, rest, _ := strings.Cut(errOut.String(), "\n")
			if first != tt.want {
				t.Errorf("first line\n got %q\nwant %q", first, tt.want)
			}
			if !strings.Contains(rest, "usage") {
				t.Errorf("no usage after the error:\n%s", errOut.String())
			}
		})
	}
}

func TestCheckRulesChecksARuleFileOnItsOwn(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"check", "rules", "../../configs/cookbook/rules.yaml"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "SUCCESS: ../../configs/cookbook/rules.yaml is valid:") {
		t.Errorf("output:\n%s", out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("rules:\n  - metric_name: x\n    type: countr\n"), 0o644)
	out.Reset()
	errOut.Reset()
	if code := run([]string{"check", "rules", bad}, &out, &errOut); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), bad+`:3: unknown type "countr"`) {
		t.Errorf("error lacks file:line and reason:\n%s", errOut.String())
	}
}
