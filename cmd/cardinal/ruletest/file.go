package ruletest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/cardinal-proxy/cardinal/config"
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
}

// testCase is one test: inputs and what the outputs must be.
type testCase struct {
	Name        string         `yaml:"name"`
	Interval    model.Duration `yaml:"interval"`
	InputSeries []inputSeries  `yaml:"input_series"`
	Expected    []expectation  `yaml:"expected"`
}

type inputSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

// expectation is the value one output series must have at eval_time, as an instant query
// at that time would see it. Absent asserts the series has no value then.
type expectation struct {
	Series   string         `yaml:"series"`
	EvalTime model.Duration `yaml:"eval_time"`
	Value    *float64       `yaml:"value"`
	Absent   bool           `yaml:"absent"`
	line     int
}

// UnmarshalYAML records the line of each expectation, for failure messages.
func (e *expectation) UnmarshalYAML(n *yaml.Node) error {
	type plain expectation
	var p plain
	if err := decodeStrictNode(n, &p); err != nil {
		return err
	}
	*e = expectation(p)
	e.line = n.Line
	return nil
}

func decodeStrictNode(n *yaml.Node, v any) error {
	// Re-encode the node so the strict decoder (KnownFields) applies to it too.
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// loadTestFile reads a test file and the rules it tests.
func loadTestFile(path string) (*testFile, *config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var tf testFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	dir := filepath.Dir(path)
	var cfg *config.Config
	switch {
	case tf.ConfigFile != "" && len(tf.RuleFiles) > 0:
		return nil, nil, fmt.Errorf("%s: config_file and rule_files are mutually exclusive", path)
	case tf.ConfigFile != "":
		p := tf.ConfigFile
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		cfg, err = config.Load(p)
	case len(tf.RuleFiles) > 0:
		// The tests use no downstream; the file sink keeps the config valid.
		doc := map[string]any{"rule_files": tf.RuleFiles, "downstream": map[string]any{"file": map[string]string{"path": "-"}}}
		if !tf.Aggregator.IsZero() {
			doc["aggregator"] = &tf.Aggregator
		}
		b, merr := yaml.Marshal(doc)
		if merr != nil {
			return nil, nil, merr
		}
		cfg, err = config.Parse(b, path)
	default:
		return nil, nil, fmt.Errorf("%s: a test file needs config_file or rule_files", path)
	}
	if err != nil {
		return nil, nil, err
	}
	return &tf, cfg, nil
}
