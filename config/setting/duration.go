package setting

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Duration is a duration written the Prometheus way in YAML: "30s", "5m", "1h30m", "1d", "0".
// Convert with time.Duration(d).
type Duration time.Duration

// UnmarshalYAML parses a Prometheus-style duration; a bad value is reported at its line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return nodeError(n, "expected a duration such as 30s, 5m, 1h or 1d")
	}
	v, err := model.ParseDuration(n.Value)
	if err != nil {
		if strings.HasPrefix(strings.TrimSpace(n.Value), "-") {
			return nodeError(n, fmt.Sprintf("invalid duration %q: a duration cannot be negative", n.Value))
		}
		return nodeError(n, fmt.Sprintf("invalid duration %q: write a number and a unit (ms, s, m, h, d, w, y), e.g. 30s, 5m, 1h, 1d", n.Value))
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back in the form it is read in.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String formats the duration the Prometheus way ("15s", "1d").
func (d Duration) String() string { return model.Duration(d).String() }
