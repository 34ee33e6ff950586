package ruletest

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// value is one input sample slot: a number, a gap (_) or a stale marker.
type value struct {
	v       float64
	missing bool
	stale   bool
}

// maxExpansion bounds how many values one notation string may expand to, so a typo like
// 0+1x999999999 is an error rather than an out-of-memory.
const maxExpansion = 1_000_000

// parseValues expands Prometheus's test notation: space-separated items, each a number, `_`
// (no sample), `stale` (a stale marker), `a+bxN` / `a-bxN` (N+1 values from a stepping by b),
// `axN` (N+1 copies of a) or `_xN` (N gaps).
func parseValues(s string) ([]value, error) {
	var out []value
	for _, item := range strings.Fields(s) {
		vs, err := expandItem(item)
		if err != nil {
			return nil, fmt.Errorf("values %q: item %q: %w", s, item, err)
		}
		if len(out)+len(vs) > maxExpansion {
			return nil, fmt.Errorf("values %q expand to more than %d samples", s, maxExpansion)
		}
		out = append(out, vs...)
	}
	return out, nil
}

func expandItem(item string) ([]value, error) {
	switch item {
	case "_":
		return []value{{missing: true}}, nil
	case "stale":
		return []value{{stale: true}}, nil
	}
	body, times, hasX := cutLast(item, "x")
	if !hasX {
		v, err := parseNumber(item)
		if err != nil {
			return nil, err
		}
		return []value{{v: v}}, nil
	}
	n, err := strconv.Atoi(times)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("repetition %q is not a non-negative integer", times)
	}
	if n >= maxExpansion {
		return nil, fmt.Errorf("repetition %d is too large", n)
	}
	if body == "_" {
		out := make([]value, n)
		for i := range out {
			out[i].missing = true
		}
		return out, nil
	}
	start, step, err := splitStep(body)
	if err != nil {
		return nil, err
	}
	out := make([]value, n+1)
	for i := range out {
		out[i].v = start + float64(i)*step
	}
	return out, nil
}

// splitStep splits "a+b" or "a-b" (a may itself be signed or use an exponent) into a and ±b;
// a plain "a" has step 0.
func splitStep(s string) (start, step float64, err error) {
	for i := len(s) - 1; i > 0; i-- {
		if (s[i] == '+' || s[i] == '-') && s[i-1] != 'e' && s[i-1] != 'E' {
			if start, err = parseNumber(s[:i]); err != nil {
				return 0, 0, err
			}
			if step, err = parseNumber(s[i+1:]); err != nil {
				return 0, 0, err
			}
			if s[i] == '-' {
				step = -step
			}
			return start, step, nil
		}
	}
	start, err = parseNumber(s)
	return start, 0, err
}

func parseNumber(s string) (float64, error) {
	switch strings.ToLower(s) {
	case "inf", "+inf":
		return math.Inf(1), nil
	case "-inf":
		return math.Inf(-1), nil
	case "nan":
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return v, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}
