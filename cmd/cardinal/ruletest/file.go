package ruletest

import (
	"bytes"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/cardinal-proxy/cardinal/config"
	"github.com/cardinal-proxy/cardinal/config/setting"
)

// testFile is the YAML of a rule test file.
//
//	config_file: cardinal.yaml        # the rules under test (or rule_files + aggregator)
//	tests:
//	  - name: drops pod
//	    interval: 15s                 # spacing of input samples
//	    input_series:
//	      - series: 'http_requests_total{job="api",pod="a"}'
//	        values: '0+10x40'
//	    expected:
//	      - series: 'http_requests_total{job="api"}'
//	        eval_time: 5m
//	        value: 200
type testFile struct {
	ConfigFile string     `yaml:"config_file"`
	RuleFiles  []string   `yaml:"rule_files"`
	Aggregator yaml.Node  `yaml:"aggregator"`
	Tests      []testCase `yaml:"tests"`

	root *yaml.Node // the document, for lines
}

// testCase is one test: inputs and what the outputs must be.
type testCase struct {
	Name        string           `yaml:"name"`
	Interval    setting.Duration `yaml:"interval"`
	InputSeries []inputSeries    `yaml:"input_series"`
	Expected    []expectation    `yaml:"expected"`
}

type inputSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

// expectation is the value one output series must have at eval_time, as an instant query
// at that time would see it. Absent asserts the series has no value then.
type expectation struct {
	Series   string           `yaml:"series"`
	EvalTime setting.Duration `yaml:"eval_time"`
	Value    *float64         `yaml:"value"`
	Absent   bool             `yaml:"absent"`
	line     int              // where it is written, for failure messages
}

// loadTestFile reads a test file and the rules it tests.
func loadTestFile(path string) (*testFile, *config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	tf, err := decodeTestFile(data, path)
	if err != nil {
		return nil, nil, err
	}
	dir := filepath.Dir(path)
	var cfg *config.Config
	switch {
	case tf.ConfigFile != "":
		p := tf.ConfigFile
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		cfg, err = config.Load(p)
	case len(tf.RuleFiles) > 0:
		cfg, err = config.Parse(rulesConfig(data, tf.root), path)
	}
	if err != nil {
		return nil, nil, err
	}
	return tf, cfg, nil
}

// rulesConfig makes, from a test file that names rule_files, the cardinal config its tests
// run: the file itself with every top-level key but rule_files and aggregator blanked out, so
// that a problem in the aggregator section or a rule file is reported at its line in the
// test file, and a file downstream appended (the tests need none; a config needs one).
func rulesConfig(data []byte, root *yaml.Node) []byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	doc := mapping(root)
	if doc != nil && doc.Style&yaml.FlowStyle != 0 {
		// One {...} mapping: its keys share lines, so the two are copied out instead (and
		// their problems lose their lines).
		out := map[string]*yaml.Node{}
		for _, key := range []string{"rule_files", "aggregator"} {
			if v := valueOf(doc, key); v != nil {
				out[key] = v
			}
		}
		b, err := yaml.Marshal(out)
		if err != nil {
			return data
		}
		return append(b, "downstream: {file: {path: \"-\"}}\n"...)
	}
	for i := 0; doc != nil && i+1 < len(doc.Content); i += 2 {
		key := doc.Content[i]
		if key.Value == "rule_files" || key.Value == "aggregator" {
			continue
		}
		end := len(lines) // through the line before the next top-level key
		if i+2 < len(doc.Content) {
			end = doc.Content[i+2].Line - 1
		}
		for l := key.Line - 1; l < end && l < len(lines); l++ {
			lines[l] = []byte("\n")
		}
	}
	out := bytes.Join(lines, nil)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, "downstream: {file: {path: \"-\"}}\n"...)
}
