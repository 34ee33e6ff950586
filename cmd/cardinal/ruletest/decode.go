package ruletest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// decodeTestFile decodes a rule test file strictly (an unknown key is an error) and records
// the line of every expectation. Its errors read like the config file's: "file:line:
// message", keys and YAML kinds rather than Go types, and the key probably meant.
func decodeTestFile(data []byte, path string) (*testFile, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, located(err, path)
	}
	tf := &testFile{root: &root}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(tf); err != nil && !errors.Is(err, io.EOF) {
		return nil, located(err, path)
	}
	doc := mapping(&root)
	var problems setting.Problems
	if doc != nil && valueOf(doc, "config_file") != nil && valueOf(doc, "rule_files") != nil {
		problems.Errorf(path, valueOf(doc, "rule_files").Line, "config_file and rule_files are mutually exclusive: name the rules under test one way")
	}
	if tf.ConfigFile == "" && len(tf.RuleFiles) == 0 {
		problems.Errorf(path, 0, "a test file needs config_file (a cardinal config) or rule_files (rule files, with an optional aggregator section)")
	}
	if err := problems.Err(); err != nil {
		return nil, err
	}
	tests := valueOf(doc, "tests")
	for i := range tf.Tests {
		expected := valueOf(itemOf(tests, i), "expected")
		for j := range tf.Tests[i].Expected {
			if n := itemOf(expected, j); n != nil {
				tf.Tests[i].Expected[j].line = n.Line
			}
		}
	}
	return tf, nil
}

// mapping returns the mapping a document node holds, or nil.
func mapping(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	return n
}

// valueOf returns the value of key in mapping n, or nil.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	if n = mapping(n); n == nil {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// itemOf returns the i-th item of sequence n, or nil.
func itemOf(n *yaml.Node, i int) *yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
		return nil
	}
	return n.Content[i]
}

var (
	lineRE         = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
	cannotRE       = regexp.MustCompile("^cannot unmarshal (\\S+)(?: `(.*)`)? into (\\S+)$")
)

// located turns a yaml.v3 error into "file:line: message" errors, one per problem.
func located(err error, path string) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var p setting.Problems
	for _, m := range msgs {
		m = strings.ReplaceAll(m, "\n", `\n`)
		line := 0
		if sub := lineRE.FindStringSubmatch(m); sub != nil {
			line, _ = strconv.Atoi(sub[1])
			m = sub[2]
		}
		p.Errorf(path, line, "%s", friendly(m))
	}
	return p.Err()
}

// sections names each part of a test file by what its keys are, for error messages.
var sections = map[string]struct {
	name string
	t    reflect.Type
}{
	"ruletest.testFile":    {"at the top level of a rule test file", reflect.TypeFor[testFile]()},
	"ruletest.testCase":    {"in a test (an item of tests)", reflect.TypeFor[testCase]()},
	"ruletest.inputSeries": {"in an item of input_series", reflect.TypeFor[inputSeries]()},
	"ruletest.expectation": {"in an item of expected", reflect.TypeFor[expectation]()},
}

// friendly rewrites a decoder message in the words of the file: keys, with the one probably
// meant, and YAML kinds instead of Go types.
func friendly(msg string) string {
	if sub := unknownFieldRE.FindStringSubmatch(msg); sub != nil {
		sec, ok := sections[sub[2]]
		if !ok {
			return fmt.Sprintf("unknown key %q", sub[1])
		}
		keys := yamlKeys(sec.t)
		out := fmt.Sprintf("unknown key %q %s", sub[1], sec.name)
		if best := setting.Closest(sub[1], keys); best != "" {
			return out + fmt.Sprintf("; did you mean %q?", best)
		}
		return out + "; valid keys: " + strings.Join(keys, ", ")
	}
	if sub := cannotRE.FindStringSubmatch(msg); sub != nil {
		what := "a value"
		switch sub[1] {
		case "!!str":
			what = "the string"
		case "!!seq":
			what = "a list"
		case "!!map":
			what = "a mapping"
		case "!!int", "!!float":
			what = "the number"
		case "!!bool":
			what = "the boolean"
		}
		if sub[2] != "" {
			what += " " + strconv.Quote(sub[2])
		}
		return fmt.Sprintf("expected %s, not %s", yamlKind(sub[3]), what)
	}
	return msg
}

// yamlKind names what a Go type expects, in YAML words.
func yamlKind(goType string) string {
	switch {
	case goType == "float64" || goType == "*float64":
		return "a number"
	case goType == "bool":
		return "a boolean (true or false)"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "[]ruletest.testCase"):
		return "a list of tests"
	case strings.HasPrefix(goType, "[]ruletest.inputSeries"):
		return "a list of {series, values}"
	case strings.HasPrefix(goType, "[]ruletest.expectation"):
		return "a list of {series, eval_time, value or absent}"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	}
	if _, ok := sections[goType]; ok {
		return "a mapping of keys to values"
	}
	return "another kind of value"
}

// yamlKeys lists the keys a struct type decodes.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}
