package rules

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MetricNameLabel is the label holding a series' metric name.
const MetricNameLabel = "__name__"

// ParseSelector parses a Prometheus series selector: an optional metric name followed by
// optional label matchers in braces, `name{a="b", c!="d", e=~"re", f!~"re"}` or
// `{__name__=~"re", ...}`. Values may be double-quoted or single-quoted (with Go escapes:
// \n, \", \\, \x41, \u00e9...) or back-quoted (raw). The metric name comes first in the
// result, as an equality matcher on __name__; the other matchers follow in written order.
// Like PromQL, it refuses a selector every matcher of which matches the empty string (it
// would select every series). Errors give the 1-based column.
func ParseSelector(s string) ([]*Matcher, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("selector is not valid UTF-8")
	}
	p := &selectorParser{s: s}
	ms, err := p.parse()
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if !m.Matches("") {
			return ms, nil
		}
	}
	return nil, fmt.Errorf("selector %q would select every series: it needs a metric name or a matcher that does not match the empty string", s)
}

// selectorParser is a recursive-descent parser over the selector text.
type selectorParser struct {
	s   string
	pos int
}

func (p *selectorParser) errorf(format string, args ...any) error {
	return fmt.Errorf("column %d: "+format, append([]any{p.pos + 1}, args...)...)
}

func (p *selectorParser) parse() ([]*Matcher, error) {
	var ms []*Matcher
	p.skipSpace()
	if p.pos < len(p.s) && isNameStart(p.s[p.pos], true) {
		name := p.name(true)
		m, _ := NewMatcher(MatchEqual, MetricNameLabel, name)
		ms = append(ms, m)
		p.skipSpace()
	}
	if p.pos < len(p.s) && p.s[p.pos] == '{' {
		p.pos++
		more, err := p.matchers(len(ms) > 0)
		if err != nil {
			return nil, err
		}
		ms = append(ms, more...)
		p.skipSpace()
	}
	switch {
	case p.pos < len(p.s):
		return nil, p.errorf("unexpected %q: a selector is name{label=\"value\", ...}", p.rest())
	case len(ms) == 0 && strings.TrimSpace(p.s) == "":
		return nil, fmt.Errorf("empty selector")
	}
	return ms, nil
}

// matchers parses the inside of {...}, up to and including the closing brace.
func (p *selectorParser) matchers(haveName bool) ([]*Matcher, error) {
	var ms []*Matcher
	for {
		p.skipSpace()
		if p.pos >= len(p.s) {
			return nil, p.errorf("missing }")
		}
		if p.s[p.pos] == '}' {
			p.pos++
			return ms, nil
		}
		m, err := p.matcher()
		if err != nil {
			return nil, err
		}
		if m.Name == MetricNameLabel && haveName {
			return nil, fmt.Errorf("the metric name is given twice (before the braces and as __name__)")
		}
		ms = append(ms, m)
		p.skipSpace()
		switch {
		case p.pos >= len(p.s):
			return nil, p.errorf("missing }")
		case p.s[p.pos] == ',':
			p.pos++
		case p.s[p.pos] != '}':
			return nil, p.errorf("unexpected %q: expected , or } after a matcher", p.rest())
		}
	}
}

// matcher parses label op "value".
func (p *selectorParser) matcher() (*Matcher, error) {
	switch {
	case p.s[p.pos] == '"' || p.s[p.pos] == '\'':
		return nil, p.errorf("quoted label names are not supported")
	case !isNameStart(p.s[p.pos], false):
		return nil, p.errorf("unexpected %q: expected a label name", p.rest())
	}
	label := p.name(false)
	p.skipSpace()
	op, err := p.operator(label)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	valuePos := p.pos
	value, err := p.str()
	if err != nil {
		return nil, err
	}
	m, err := NewMatcher(op, label, value)
	if err != nil {
		p.pos = valuePos
		return nil, p.errorf("label %s: invalid regexp %q: %v", label, value, err)
	}
	return m, nil
}

func (p *selectorParser) operator(label string) (MatchType, error) {
	for _, op := range []struct {
		text string
		t    MatchType
	}{{"=~", MatchRegexp}, {"!~", MatchNotRegexp}, {"!=", MatchNotEqual}, {"=", MatchEqual}} {
		if strings.HasPrefix(p.s[p.pos:], op.text) {
			p.pos += len(op.text)
			return op.t, nil
		}
	}
	return 0, p.errorf("expected =, !=, =~ or !~ after label %s", label)
}

// str parses a quoted string and returns its unescaped value.
func (p *selectorParser) str() (string, error) {
	if p.pos >= len(p.s) {
		return "", p.errorf("missing value: expected a quoted string")
	}
	quote := p.s[p.pos]
	start := p.pos
	switch quote {
	case '`':
		end := strings.IndexByte(p.s[start+1:], '`')
		if end < 0 {
			return "", p.errorf("unterminated string")
		}
		p.pos = start + 1 + end + 1
		return p.s[start+1 : start+1+end], nil
	case '"', '\'':
	default:
		return "", p.errorf("unexpected %q: expected a quoted string", p.rest())
	}
	i := start + 1
	for ; i < len(p.s) && p.s[i] != quote; i++ {
		switch p.s[i] {
		case '\\':
			i++
		case '\n':
			p.pos = i
			return "", p.errorf("line break in string (write \\n)")
		}
	}
	if i >= len(p.s) {
		return "", p.errorf("unterminated string")
	}
	p.pos = i + 1
	return unescape(p.s[start+1:i], quote, start)
}

// unescape resolves Go-style escapes in the body of a string quoted with quote; offset is
// the opening quote's position, for error columns.
func unescape(body string, quote byte, offset int) (string, error) {
	if !strings.ContainsRune(body, '\\') {
		return body, nil
	}
	var b strings.Builder
	for rest := body; rest != ""; {
		r, multibyte, tail, err := strconv.UnquoteChar(rest, quote)
		if err != nil {
			col := offset + 1 + len(body) - len(rest) + 1
			return "", fmt.Errorf("column %d: invalid escape sequence in string", col)
		}
		if multibyte || r < utf8.RuneSelf {
			b.WriteRune(r)
		} else {
			b.WriteByte(byte(r)) // \xHH and octal escapes are bytes, as in Go
		}
		rest = tail
	}
	if !utf8.ValidString(b.String()) {
		return "", fmt.Errorf("column %d: string is not valid UTF-8 once unescaped", offset+1)
	}
	return b.String(), nil
}

// name consumes a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or label name (no colons).
func (p *selectorParser) name(metric bool) string {
	start := p.pos
	for p.pos < len(p.s) && (isNameStart(p.s[p.pos], metric) || p.s[p.pos] >= '0' && p.s[p.pos] <= '9') {
		p.pos++
	}
	return p.s[start:p.pos]
}

func isNameStart(c byte, metric bool) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || metric && c == ':'
}

func (p *selectorParser) skipSpace() {
	for p.pos < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.pos]) >= 0 {
		p.pos++
	}
}

// rest is the unparsed text, shortened for error messages.
func (p *selectorParser) rest() string {
	r := p.s[p.pos:]
	if len(r) > 20 {
		r = r[:20] + "..."
	}
	return r
}
