package config

import (
	"gopkg.in/yaml.v3"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// place is a section of a document (a path from its root), for reporting problems about the
// section's keys at their lines.
type place struct {
	p    *setting.Problems
	file string
	root *yaml.Node
	path []any
}

// sub is the place of a nested section or list item.
func (pl place) sub(steps ...any) place {
	pl.path = append(append([]any(nil), pl.path...), steps...)
	return pl
}

// line is the line of key in the section (the section's own line when key is absent or "").
func (pl place) line(key string) int {
	if key == "" {
		return lineOf(pl.root, pl.path...)
	}
	return lineOf(pl.root, append(append([]any(nil), pl.path...), key)...)
}

// has reports whether key is written in the section.
func (pl place) has(key string) bool {
	return has(pl.root, append(append([]any(nil), pl.path...), key)...)
}

func (pl place) errorf(key, format string, args ...any) {
	pl.p.Errorf(pl.file, pl.line(key), format, args...)
}

func (pl place) warnf(key, format string, args ...any) {
	pl.p.Warnf(pl.file, pl.line(key), format, args...)
}
