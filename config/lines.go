package config

import (
	"gopkg.in/yaml.v3"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// The decoded structs do not remember where their values came from; the document's node tree
// does. These helpers find the line of a value for an error message.

// resolve steps over a document wrapper and aliases to the node holding the content.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil {
		switch n.Kind {
		case yaml.DocumentNode:
			if len(n.Content) == 0 {
				return nil
			}
			n = n.Content[0]
		case yaml.AliasNode:
			n = n.Alias
		default:
			return n
		}
	}
	return nil
}

// child returns the value under key in a mapping and the key's own node, or nils.
func child(n *yaml.Node, key string) (keyNode, value *yaml.Node) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// item returns the i-th element of a sequence, or nil.
func item(n *yaml.Node, i int) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
		return nil
	}
	return n.Content[i]
}

// lineOf follows path (string keys into mappings, int indexes into sequences) from n and
// returns the line of the last step found: the key's line for a key, the item's line for an
// index. When a step is missing it returns the line of the deepest node reached, so an error
// about an absent key points at the section that lacks it.
func lineOf(n *yaml.Node, path ...any) int {
	line := 0
	if r := resolve(n); r != nil {
		line = r.Line
	}
	cur := n
	for _, step := range path {
		switch s := step.(type) {
		case string:
			k, v := child(cur, s)
			if k == nil {
				return line
			}
			line, cur = k.Line, v
		case int:
			it := item(cur, s)
			if it == nil {
				return line
			}
			line, cur = it.Line, it
		}
	}
	return line
}

// has reports whether the key at the end of path is written in the document with a non-null
// value (a null value leaves the default in place, as if the key were absent).
func has(n *yaml.Node, path ...any) bool {
	cur := n
	for _, step := range path {
		switch s := step.(type) {
		case string:
			_, cur = child(cur, s)
		case int:
			cur = item(cur, s)
		}
		if cur == nil {
			return false
		}
	}
	r := resolve(cur)
	return r != nil && !(r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null")
}

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
