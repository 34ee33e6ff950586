package main

import (
	"fmt"
	"io"

	"github.com/cardinal-proxy/cardinal/config"
)

// checkConfig validates each file as `promtool check config` does: errors and warnings with
// file:line, exit 1 when any file is invalid.
func checkConfig(files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: cardinal check config FILE...")
		return 2
	}
	code := 0
	for _, f := range files {
		cfg, err := config.Load(f)
		if err != nil {
			fmt.Fprintf(stderr, "FAILED: %s\n%v\n", f, err)
			code = 1
			continue
		}
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stdout, "WARNING: %s\n", w)
		}
		fmt.Fprintf(stdout, "SUCCESS: %s is valid: %d rules, %d downstreams\n", f, len(cfg.Rules), cfg.Downstream.Count())
	}
	return code
}
