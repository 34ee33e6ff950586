package config

import (
	"path/filepath"
	"slices"
)

// WatchedFiles returns the files whose content decides this configuration as of now: the
// config file and every file the rule_files patterns match at this moment. A reload watcher
// hashes these on every check, so a rule file that starts (or stops) matching a glob, as
// when a ConfigMap gains a key, is seen, not only edits to the files loaded last time.
func (c *Config) WatchedFiles() []string {
	if len(c.Files) == 0 {
		return nil
	}
	files := []string{c.Files[0]}
	dir := filepath.Dir(c.Files[0])
	for _, pattern := range c.RuleFiles {
		matches, _ := filepath.Glob(resolvePath(dir, pattern))
		slices.Sort(matches)
		for _, m := range matches {
			if !slices.Contains(files, m) {
				files = append(files, m)
			}
		}
	}
	return files
}
