package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cardinal-proxy/cardinal/explore"
)

// suggestFlags are the flags of cardinal suggest.
type suggestFlags struct {
	url, file, output, tests string
	top                      int
	target                   uint64
	keep                     string
}

// runSuggest is `cardinal suggest`: it reads the explorer's last scan from a running
// cardinal or a saved JSON answer and prints rules for the metrics with the most series.
func runSuggest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cardinal suggest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f suggestFlags
	fs.StringVar(&f.url, "url", "", "a running cardinal to read the explorer's last scan from, e.g. http://127.0.0.1:9091")
	fs.StringVar(&f.file, "file", "", "a saved answer of "+explore.APIPath+" to read instead of --url")
	fs.IntVar(&f.top, "top", 10, "how many metrics (a histogram's _bucket, _sum and _count are one) to write rules for, most series first")
	fs.Uint64Var(&f.target, "target", 1000, "the series each rule should leave its metric with, at most")
	fs.StringVar(&f.keep, "keep", "", "labels never to drop, comma-separated (e.g. job,namespace,code); le is always kept")
	fs.StringVar(&f.output, "output", "-", "where to write the rules file (- is standard output)")
	fs.StringVar(&f.tests, "tests", "", "also write a `FILE` of rule unit tests for the rules, for cardinal test rules (needs --output)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cardinal suggest (--url URL | --file FILE) [flags]\n  print rules for the metrics with the most series, from the cardinality explorer")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usageError(stderr, "cardinal suggest: unexpected argument "+fs.Arg(0))
	case (f.url == "") == (f.file == ""):
		return usageError(stderr, "cardinal suggest: give one of --url and --file")
	case f.tests != "" && f.output == "-":
		return usageError(stderr, "cardinal suggest: --tests needs --output, the rules file the tests load")
	case f.top < 1 || f.target < 1:
		return usageError(stderr, "cardinal suggest: --top and --target must be at least 1")
	}
	if err := suggest(f, stdout); err != nil {
		fmt.Fprintln(stderr, "cardinal suggest:", err)
		return 1
	}
	return 0
}

func suggest(f suggestFlags, stdout io.Writer) error {
	var (
		data   []byte
		err    error
		source = f.file
	)
	if f.url != "" {
		source = strings.TrimRight(f.url, "/")
		data, err = fetchExplore(source)
	} else {
		data, err = os.ReadFile(f.file)
	}
	if err != nil {
		return err
	}
	result, err := decodeExplore(data)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	var keep []string
	for _, k := range strings.Split(f.keep, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keep = append(keep, k)
		}
	}
	s := explore.Suggest(result, explore.SuggestOptions{Top: f.top, Target: f.target, Keep: keep, Source: source})
	if f.output == "-" {
		_, err := io.WriteString(stdout, s.RulesYAML())
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.output), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(f.output, []byte(s.RulesYAML()), 0o644); err != nil {
		return err
	}
	if f.tests == "" {
		return nil
	}
	rel, err := filepath.Rel(filepath.Dir(f.tests), f.output)
	if err != nil {
		rel, _ = filepath.Abs(f.output)
	}
	if err := os.MkdirAll(filepath.Dir(f.tests), 0o755); err != nil {
		return err
	}
	return os.WriteFile(f.tests, []byte(s.TestsYAML(rel)), 0o644)
}

// fetchExplore reads every metric of the explorer's answer at base.
func fetchExplore(base string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+explore.APIPath+"?limit=1000000", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s%s: %s: %s", base, explore.APIPath, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// decodeExplore reads the API's answer and returns its complete scan.
func decodeExplore(data []byte) (explore.Result, error) {
	var r explore.Response
	if err := json.Unmarshal(data, &r); err != nil {
		return explore.Result{}, fmt.Errorf("not an answer of %s: %w", explore.APIPath, err)
	}
	switch {
	case r.Status != "success" || r.Data == nil:
		return explore.Result{}, fmt.Errorf("the explorer answered %q: %s", r.Status, r.Error)
	case !r.Data.Enabled:
		return explore.Result{}, errors.New("the explorer is switched off there (explore.enabled: false)")
	case r.Data.Result == nil:
		return explore.Result{}, fmt.Errorf("no scan has completed yet: the first ends %s after start-up", r.Data.ScanFor)
	}
	return *r.Data.Result, nil
}
