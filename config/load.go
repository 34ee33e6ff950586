package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cardinal-proxy/cardinal/config/setting"
	"github.com/cardinal-proxy/cardinal/hashring"
	"github.com/cardinal-proxy/cardinal/rules"
)

// Loader reads configuration files. Its zero value uses the process environment and the file
// system; tests and tools may substitute their own.
type Loader struct {
	// LookupEnv resolves ${NAME} references (default os.LookupEnv).
	LookupEnv func(name string) (string, bool)
	// ReadFile reads the config file and rule files (default os.ReadFile).
	ReadFile func(path string) ([]byte, error)
	// Glob expands rule_files patterns (default filepath.Glob).
	Glob func(pattern string) ([]string, error)
	// SyntaxOnly skips reading the files settings name (certificates, password and token
	// files), which start-up reads: for a config checked away from where it runs.
	SyntaxOnly bool
	// Reloading loads the file again for a running process: the cluster section, which takes
	// effect at a restart, is checked but its files are not read (the peers file changes
	// while cardinal runs, and one caught mid-write must not fail a reload of the rules).
	Reloading bool
}

// Load reads, validates and compiles the configuration file at path, with the process
// environment and file system. See Loader.Parse.
func Load(path string) (*Config, error) { return Loader{}.Load(path) }

// Parse validates and compiles a configuration whose text is data, as if read from filename
// (which names it in errors and anchors relative rule_files and paths). See Loader.Parse.
func Parse(data []byte, filename string) (*Config, error) { return Loader{}.Parse(data, filename) }

// Load reads the file at path and parses it.
func (l Loader) Load(path string) (*Config, error) {
	data, err := l.readFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return l.Parse(data, path)
}

// Parse expands ${VAR} references, decodes data strictly, fills defaults, loads the rule
// files, validates everything and compiles the rules. On failure it returns every problem it
// found, in every file, as *Error values joined with errors.Join ("file:line: message", one per
// line).
func (l Loader) Parse(data []byte, filename string) (*Config, error) {
	var p setting.Problems
	p.SeeFile(filename)
	cfg := defaultConfig()
	root, ok := l.decode(data, filename, &cfg, &p)
	if !ok {
		return nil, p.Err()
	}
	top := place{p: &p, file: filename, root: root}
	warnEmptySections(top)
	top.sub("server").validate(&cfg.Server)
	validateAggregator(&cfg.Aggregator, top.sub("aggregator"))
	dir := filepath.Dir(filename)
	normalizeDownstream(&cfg, dir, top)
	if !l.SyntaxOnly {
		for i := range cfg.Downstream.RemoteWrite {
			top.sub("downstream", "remote_write", i).checkFiles(&cfg.Downstream.RemoteWrite[i])
		}
	}
	if cfg.WAL != nil {
		top.sub("wal").validate(cfg.WAL)
		if cfg.WAL.Dir != "" {
			cfg.WAL.Dir = resolvePath(dir, cfg.WAL.Dir)
		}
	}
	if c := cfg.Cluster; c != nil {
		top.sub("cluster").validate(c)
		resolveClusterPaths(c, dir)
		if !l.SyntaxOnly && !l.Reloading {
			top.sub("cluster").checkFiles(c)
		}
	}

	top.sub("explore").validate(&cfg.Explore)

	srcs := make([]rules.Source, 0, len(cfg.RuleConfigs))
	for i, rc := range cfg.RuleConfigs {
		srcs = append(srcs, rules.Source{Config: rc, At: ruleLocator{file: filename, node: item(topValue(root, "rules"), i)}})
	}
	fileSrcs, files := l.loadRuleFiles(cfg.RuleFiles, dir, top)
	srcs = append(srcs, fileSrcs...)

	compiled := rules.Compile(srcs, cfg.Aggregator.Defaults, &p)
	if p.Failed() {
		return nil, p.Err()
	}
	switch {
	case len(compiled) == 0 && !cfg.Aggregator.ForwardUnmatched():
		top.warnf("", "no rules: every series is dropped (aggregator.unmatched: drop)")
	case len(compiled) == 0:
		top.warnf("", "no rules: every series is forwarded unchanged")
	}

	cfg.Rules = compiled
	cfg.Warnings = p.Warnings()
	cfg.Files = append([]string{filename}, files...)
	cfg.Hash = configHash(&cfg, srcs)
	return &cfg, nil
}

// emptySections are the top-level sections whose absence turns a feature off, with what an
// empty one (the key written, its contents commented out) therefore means.
var emptySections = []struct{ key, off string }{
	{"wal", "there is no write-ahead log; set wal.dir to keep one, or remove the key"},
	{"cluster", "clustering is off and this cardinal aggregates alone; set cluster.peers, cluster.peers_file or cluster.dns.name to join a cluster, or remove the key"},
}

// warnEmptySections warns of each section of emptySections written with a null value: it
// decodes as if absent, so the feature is off without a word otherwise.
func warnEmptySections(top place) {
	for _, s := range emptySections {
		if k, _ := child(top.root, s.key); k != nil && !top.has(s.key) {
			top.warnf(s.key, "%s: the section is empty, so %s", s.key, s.off)
		}
	}
}

// topValue returns the value under key at the top of the document, or nil.
func topValue(root *yaml.Node, key string) *yaml.Node {
	_, v := child(root, key)
	return v
}

// decode expands variables in data and decodes it strictly into v, recording problems.
func (l Loader) decode(data []byte, file string, v any, p *setting.Problems) (*yaml.Node, bool) {
	expanded, errs := expandEnv(data, file, l.lookupEnv)
	if len(errs) > 0 {
		p.AddErrors(errs)
		return nil, false
	}
	root, errs := decodeStrict(expanded, file, v)
	if len(errs) > 0 {
		p.AddErrors(errs)
		return nil, false
	}
	return root, true
}

// loadRuleFiles reads the files the rule_files patterns match, in pattern order and, within a
// pattern, in sorted order (a file matched twice is read once). Relative patterns are relative
// to dir, the config file's directory. It returns the rules and the files read.
func (l Loader) loadRuleFiles(patterns []string, dir string, top place) ([]rules.Source, []string) {
	at := top.sub("rule_files")
	var srcs []rules.Source
	var files []string
	for i, pattern := range patterns {
		if pattern == "" {
			at.sub(i).errorf("", "rule_files: empty pattern")
			continue
		}
		matches, err := l.glob(resolvePath(dir, pattern))
		if err != nil {
			at.sub(i).errorf("", "rule_files: bad pattern %q: %v", pattern, err)
			continue
		}
		switch {
		case len(matches) == 0 && !hasMeta(pattern):
			at.sub(i).errorf("", "rule_files: %s does not exist", resolvePath(dir, pattern))
		case len(matches) == 0:
			at.sub(i).warnf("", "rule_files: %q matches no files", pattern)
		}
		slices.Sort(matches)
		for _, file := range matches {
			if slices.Contains(files, file) {
				continue
			}
			files = append(files, file)
			top.p.SeeFile(file)
			data, err := l.readFile(file)
			if err != nil {
				at.sub(i).errorf("", "rule_files: %v", err)
				continue
			}
			var rf ruleFile
			root, ok := l.decode(data, file, &rf, top.p)
			if !ok {
				continue
			}
			for j, rc := range rf.Rules {
				srcs = append(srcs, rules.Source{Config: rc, At: ruleLocator{file: file, node: item(topValue(root, "rules"), j)}})
			}
		}
	}
	return srcs, files
}

// LoadRuleFiles reads, validates and compiles rule files on their own (each holds a
// top-level rules: list), with the default rule settings, as `cardinal check rules` does.
func (l Loader) LoadRuleFiles(paths ...string) ([]*rules.Rule, []string, error) {
	var p setting.Problems
	var srcs []rules.Source
	for _, file := range paths {
		p.SeeFile(file)
		data, err := l.readFile(file)
		if err != nil {
			p.Errorf(file, 0, "%v", err)
			continue
		}
		var rf ruleFile
		root, ok := l.decode(data, file, &rf, &p)
		if !ok {
			continue
		}
		for j, rc := range rf.Rules {
			srcs = append(srcs, rules.Source{Config: rc, At: ruleLocator{file: file, node: item(topValue(root, "rules"), j)}})
		}
	}
	compiled := rules.Compile(srcs, rules.DefaultDefaults(), &p)
	if p.Failed() {
		return nil, nil, p.Err()
	}
	return compiled, p.Warnings(), nil
}

// hasMeta reports whether a rule_files entry is a pattern rather than a file name.
func hasMeta(pattern string) bool { return strings.ContainsAny(pattern, `*?[\\`) }

func (l Loader) lookupEnv(name string) (string, bool) {
	if l.LookupEnv != nil {
		return l.LookupEnv(name)
	}
	return os.LookupEnv(name)
}

func (l Loader) readFile(path string) ([]byte, error) {
	if l.ReadFile != nil {
		return l.ReadFile(path)
	}
	return os.ReadFile(path)
}

func (l Loader) glob(pattern string) ([]string, error) {
	if l.Glob != nil {
		return l.Glob(pattern)
	}
	return filepath.Glob(pattern)
}

// resolveClusterPaths makes the cluster section's file paths relative to the config file's
// directory.
func resolveClusterPaths(c *hashring.Config, dir string) {
	for _, p := range []*string{&c.PeersFile, &c.Forward.BearerTokenFile} {
		if *p != "" {
			*p = resolvePath(dir, *p)
		}
	}
	if b := c.Forward.BasicAuth; b != nil && b.PasswordFile != "" {
		b.PasswordFile = resolvePath(dir, b.PasswordFile)
	}
	resolveTLSPaths(c.Forward.TLS, dir)
}
