package config

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
	"github.com/cardinal-proxy/cardinal/downstream"
	"github.com/cardinal-proxy/cardinal/downstream/timescale"
	"github.com/cardinal-proxy/cardinal/explore"
	"github.com/cardinal-proxy/cardinal/hashring"
	"github.com/cardinal-proxy/cardinal/remotewrite"
	"github.com/cardinal-proxy/cardinal/rules"
	"github.com/cardinal-proxy/cardinal/wal"
)

// decodeStrict decodes data, a single YAML document, into v (which may hold defaults), with
// unknown keys rejected. It returns the document's node tree, for looking up lines later, and
// every problem found, each located in file. An empty document leaves v as it was.
func decodeStrict(data []byte, file string, v any) (*yaml.Node, []*setting.Problem) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return &root, nil
		}
		return nil, syntaxErrors(err, file, data)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, []*setting.Problem{{File: file, Line: extra.Line, Msg: "only one YAML document is allowed (remove the second ---)"}}
	}

	if errs := nullItems(&root, file); len(errs) > 0 {
		return nil, errs
	}
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return nil, syntaxErrors(err, file, data)
	}
	return &root, nil
}

// nullItems reports list items with no value ("- " alone, "- ~"). The decoder silently leaves
// them out of the list, which would shift every later item away from its line; no list of
// the schema has a use for them.
func nullItems(n *yaml.Node, file string) []*setting.Problem {
	var errs []*setting.Problem
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.SequenceNode {
			for _, it := range n.Content {
				if r := resolve(it); r == nil || r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null" {
					errs = append(errs, &setting.Problem{File: file, Line: it.Line, Msg: "empty list item: remove the - or give it a value"})
				}
			}
		}
		if n.Kind != yaml.AliasNode {
			for _, c := range n.Content {
				walk(c)
			}
		}
	}
	walk(n)
	return errs
}

var (
	yamlLineRE     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
	goTypeRE       = regexp.MustCompile(`into (\S+)$`)
)

// yamlErrors turns an error of the yaml.v3 decoder into located Errors with messages that
// speak of YAML keys and sections rather than Go types.
func yamlErrors(err error, file string) []*setting.Problem {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	out := make([]*setting.Problem, 0, len(msgs))
	for _, m := range msgs {
		// A message quotes the offending value, which may span lines: keep one line per error.
		m = strings.ReplaceAll(strings.ReplaceAll(m, "\r", `\r`), "\n", `\n`)
		e := &setting.Problem{File: file, Msg: m}
		if sub := yamlLineRE.FindStringSubmatch(m); sub != nil {
			e.Line, _ = strconv.Atoi(sub[1])
			e.Msg = sub[2]
		}
		e.Msg = friendlyYAMLMessage(e.Msg)
		out = append(out, e)
	}
	return out
}

// syntaxErrors is yamlErrors with a better line for a syntax error: yaml.v3 reports the line
// before the start of the enclosing block, so the line is found again as the first one whose
// inclusion makes the document fail with the same message (by bisection: once the bad line is
// in, every longer prefix fails the same way).
func syntaxErrors(err error, file string, data []byte) []*setting.Problem {
	errs := yamlErrors(err, file)
	var te *yaml.TypeError
	if len(errs) != 1 || errors.As(err, &te) {
		return errs
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	fails := func(k int) bool {
		var n yaml.Node
		perr := yaml.Unmarshal(bytes.Join(lines[:k], nil), &n)
		return perr != nil && strings.HasSuffix(perr.Error(), ": "+errs[0].Msg)
	}
	lo, hi := 1, len(lines)
	if !fails(hi) {
		return errs
	}
	for lo < hi {
		if mid := (lo + hi) / 2; fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	errs[0].Line = lo
	return errs
}

func friendlyYAMLMessage(msg string) string {
	if sub := unknownFieldRE.FindStringSubmatch(msg); sub != nil {
		return unknownKeyMessage(sub[1], sub[2])
	}
	if sub := goTypeRE.FindStringSubmatch(msg); sub != nil && strings.HasPrefix(msg, "cannot unmarshal ") {
		return strings.TrimSuffix(msg, sub[0]) + "into " + yamlKind(sub[1])
	}
	return msg
}

// yamlKind names what a Go type expects, in YAML words.
func yamlKind(goType string) string {
	switch {
	case goType == "int" || goType == "int64":
		return "an integer"
	case goType == "bool":
		return "a boolean (true or false)"
	case goType == "string" || goType == "rules.Type" || goType == "rules.FirstSample" ||
		goType == "aggregator.Unmatched" || goType == "setting.Secret":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a mapping of names to values"
	}
	if name, _ := section(goType); name != "" {
		return "a mapping (" + name + ")"
	}
	return goType
}

// section maps a decoded Go type to the name of its YAML section and the type whose yaml tags
// list the section's keys.
func section(goType string) (string, reflect.Type) {
	switch goType {
	case "config.Config":
		return "the top level", reflect.TypeFor[Config]()
	case "remotewrite.ServerConfig":
		return "server", reflect.TypeFor[remotewrite.ServerConfig]()
	case "remotewrite.LimitsConfig":
		return "server.limits", reflect.TypeFor[remotewrite.LimitsConfig]()
	case "config.AggregatorSection", "aggregator.Config", "rules.Defaults":
		return "aggregator", reflect.TypeFor[AggregatorSection]()
	case "rules.HAConfig":
		return "aggregator.ha", reflect.TypeFor[rules.HAConfig]()
	case "rules.RuleHAConfig":
		return "a rule's ha", reflect.TypeFor[rules.RuleHAConfig]()
	case "rules.RuleConfig":
		return "a rule", reflect.TypeFor[rules.RuleConfig]()
	case "config.ruleFile":
		return "a rule file (it holds only a rules: list)", reflect.TypeFor[ruleFile]()
	case "config.DownstreamSection":
		return "downstream", reflect.TypeFor[DownstreamSection]()
	case "downstream.plainRemoteWrite", "downstream.RemoteWriteConfig":
		return "a downstream.remote_write entry", reflect.TypeFor[downstream.RemoteWriteConfig]()
	case "downstream.BasicAuth":
		return "basic_auth", reflect.TypeFor[downstream.BasicAuth]()
	case "downstream.QueueConfig":
		return "queue", reflect.TypeFor[downstream.QueueConfig]()
	case "downstream.FileConfig":
		return "downstream.file", reflect.TypeFor[downstream.FileConfig]()
	case "wal.plainConfig", "wal.Config":
		return "wal", reflect.TypeFor[wal.Config]()
	case "hashring.plainConfig", "hashring.Config":
		return "cluster", reflect.TypeFor[hashring.Config]()
	case "hashring.DNSConfig":
		return "cluster.dns", reflect.TypeFor[hashring.DNSConfig]()
	case "hashring.plainForward", "hashring.ForwardConfig":
		return "cluster.forward", reflect.TypeFor[hashring.ForwardConfig]()
	case "downstream.TLSConfig":
		return "tls_config (or cluster.forward.tls)", reflect.TypeFor[downstream.TLSConfig]()
	case "explore.plainConfig", "explore.Config":
		return "explore", reflect.TypeFor[explore.Config]()
	case "timescale.plainConfig", "timescale.Config":
		return "a downstream.timescaledb entry", reflect.TypeFor[timescale.Config]()
	}
	return "", nil
}

// unknownKeyMessage explains an unknown key and suggests the key that was probably meant.
func unknownKeyMessage(key, goType string) string {
	name, t := section(goType)
	if name == "" {
		return fmt.Sprintf("unknown key %q", key)
	}
	msg := fmt.Sprintf("unknown key %q in %s", key, name)
	if t == reflect.TypeFor[Config]() {
		msg = fmt.Sprintf("unknown key %q at %s", key, name)
	}
	switch {
	case t == reflect.TypeFor[ruleFile]() && key == "groups":
		return msg + " (cardinal rule files are not Prometheus rule groups: write a top-level rules: list)"
	}
	keys := yamlKeys(t)
	if best := setting.Closest(key, keys); best != "" {
		return msg + fmt.Sprintf("; did you mean %q?", best)
	}
	return msg + "; valid keys: " + strings.Join(keys, ", ")
}

// yamlKeys lists the keys a struct type decodes.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case opts == "inline":
			keys = append(keys, yamlKeys(f.Type)...)
		case tag != "" && tag != "-":
			keys = append(keys, tag)
		}
	}
	return keys
}
