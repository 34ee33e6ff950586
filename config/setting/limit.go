package setting

import (
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Limit is a count that bounds something; 0 means no bound. A negative value is an error at
// its line.
type Limit int

// UnmarshalYAML parses a non-negative integer.
func (l *Limit) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return nodeError(n, "expected a number (0 for no limit)")
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < 0 {
		return nodeError(n, "invalid limit "+strconv.Quote(n.Value)+": write a whole number, 0 for no limit")
	}
	*l = Limit(v)
	return nil
}

// nodeError is a decoding error at n's line, in the form the yaml.v3 decoder collects, so
// that it is reported together with every other problem of the document.
func nodeError(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, msg)}}
}
