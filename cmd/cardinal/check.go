package main

import (
	"fmt"
	"io"

	"github.com/cardinal-proxy/cardinal/config"
)

// checkConfig validates each file as `promtool check config` does: errors and warnings with
// file:line, exit 1 when any file is invalid. Like start-up, it reads the files the settings
// name, unless --syntax-only is among args (for a config checked away from where it runs).
func checkConfig(args []string, stdout, stderr io.Writer) int {
	var loader config.Loader
	var files []string
	for _, a := range args {
		if a == "--syntax-only" {
			loader.SyntaxOnly = true
			continue
		}
		files = append(files, a)
	}
	code := 0
	for _, f := range files {
		cfg, err := loader.Load(f)
		if err != nil {
			fmt.Fprintf(stderr, "FAILED: %s\n%v\n", f, err)
			code = 1
			continue
		}
		if cfg.Cluster != nil && !loader.SyntaxOnly {
			// The member name may come from the environment ($NODE_NAME, the host name),
			// which start-up checks too.
			if _, err := memberName("", cfg.Cluster); err != nil {
				fmt.Fprintf(stderr, "FAILED: %s\n%v\n", f, err)
				code = 1
				continue
			}
		}
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stdout, "WARNING: %s\n", w)
		}
		fmt.Fprintf(stdout, "SUCCESS: %s is valid: %d rules, %d downstreams\n", f, len(cfg.Rules), cfg.Downstream.Count())
	}
	return code
}

// checkRules validates rule files on their own, as `promtool check rules` does, with the
// default rule settings (an aggregator section can change those only in a config file).
func checkRules(files []string, stdout, stderr io.Writer) int {
	code := 0
	for _, f := range files {
		rs, warnings, err := config.Loader{}.LoadRuleFiles(f)
		if err != nil {
			fmt.Fprintf(stderr, "FAILED: %s\n%v\n", f, err)
			code = 1
			continue
		}
		for _, w := range warnings {
			fmt.Fprintf(stdout, "WARNING: %s\n", w)
		}
		fmt.Fprintf(stdout, "SUCCESS: %s is valid: %d rules\n", f, len(rs))
	}
	return code
}
