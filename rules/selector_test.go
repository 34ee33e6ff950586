package rules

import (
	"slices"
	"strings"
	"testing"
)

func TestParseSelectorAccepts(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // Matcher.String() of each matcher, in order
	}{
		{"bare_metric_name", "http_requests_total", []string{`__name__="http_requests_total"`}},
		{"recording_rule_name_with_colons", "job:http_requests:rate5m", []string{`__name__="job:http_requests:rate5m"`}},
		{"name_and_all_four_operators", `x{a="b",c!="d",e=~"f.*",g!~"h|i"}`,
			[]string{`__name__="x"`, `a="b"`, `c!="d"`, `e=~"f.*"`, `g!~"h|i"`}},
		{"spaces_everywhere_and_trailing_comma", " x { a = \"b\" ,\tc=~'d' , } ",
			[]string{`__name__="x"`, `a="b"`, `c=~"d"`}},
		{"name_regexp_without_metric_name", `{__name__=~"http_.+", job="api"}`,
			[]string{`__name__=~"http_.+"`, `job="api"`}},
		{"escaped_double_quote_and_backslash", `{a="say \"hi\" \\o/"}`, []string{`a="say \"hi\" \\o/"`}},
		{"single_quotes_with_escaped_single_quote", `{a='it\'s "fine"'}`, []string{`a="it's \"fine\""`}},
		{"go_escapes", `{a="tab\there\nnl \x41 \u00e9 \101"}`, []string{`a="tab\there\nnl A é A"`}},
		{"literal_unicode", `{a="größe"}`, []string{`a="größe"`}},
		{"backquoted_raw_string", "{a=~`\\d+\\.\\d+`}", []string{`a=~"\\d+\\.\\d+"`}},
		{"empty_value_with_a_non_empty_matcher", `x{a=""}`, []string{`__name__="x"`, `a=""`}},
		{"empty_braces_after_name", "x{}", []string{`__name__="x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := ParseSelector(tt.in)
			if err != nil {
				t.Fatalf("ParseSelector(%q): %v", tt.in, err)
			}
			if got := matcherStrings(ms); !slices.Equal(got, tt.want) {
				t.Errorf("ParseSelector(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseSelectorMatchesLikePromQL(t *testing.T) {
	ms, err := ParseSelector(`{__name__=~"http_.*", code=~"5..", path!~"/health|/ready", env!="dev"}`)
	if err != nil {
		t.Fatal(err)
	}
	r := &Rule{Matchers: ms}
	tests := []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{"all_match", map[string]string{"__name__": "http_requests_total", "code": "503", "path": "/api"}, true},
		{"regexp_is_anchored", map[string]string{"__name__": "http_requests_total", "code": "5000", "path": "/api"}, false},
		{"negative_regexp_rejects", map[string]string{"__name__": "http_requests_total", "code": "500", "path": "/health"}, false},
		{"not_equal_rejects", map[string]string{"__name__": "http_x", "code": "500", "env": "dev"}, false},
		{"absent_label_is_empty", map[string]string{"__name__": "http_x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.MatchLabels(labelsOf(tt.labels)); got != tt.want {
				t.Errorf("MatchLabels(%v) = %v, want %v", tt.labels, got, tt.want)
			}
		})
	}
}

func TestParseSelectorRejects(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "  ", "empty selector"},
		{"empty_braces", "{}", "would select every series"},
		{"only_empty_matchers", `{a="", b=~".*"}`, "would select every series"},
		{"missing_close_brace", `x{a="b"`, "column 8: missing }"},
		{"missing_operator", `x{a}`, "column 4: expected =, !=, =~ or !~ after label a"},
		{"missing_comma", `x{a="b" c="d"}`, `column 9: unexpected "c=\"d\"}": expected , or } after a matcher`},
		{"unquoted_value", `x{a=b}`, `column 5: unexpected "b}": expected a quoted string`},
		{"missing_value", `x{a=`, "column 5: missing value: expected a quoted string"},
		{"unterminated_string", `x{a="b}`, "column 5: unterminated string"},
		{"unterminated_raw_string", "x{a=`b}", "column 5: unterminated string"},
		{"line_break_in_string", "x{a=\"b\nc\"}", `column 7: line break in string (write \n)`},
		{"invalid_escape", `x{a="b\q"}`, "column 7: invalid escape sequence in string"},
		{"wrong_quote_escaped", `x{a='\"'}`, "column 6: invalid escape sequence in string"},
		{"escape_producing_invalid_utf8", `x{a="\xff"}`, "column 5: string is not valid UTF-8 once unescaped"},
		{"invalid_regexp", `x{a=~"("}`, `column 6: label a: invalid regexp "("`},
		{"quoted_label_name", `{"a"="b"}`, "column 2: quoted label names are not supported"},
		{"bad_label_name", `x{1a="b"}`, `column 3: unexpected "1a=\"b\"}": expected a label name`},
		{"metric_name_twice", `x{__name__="y"}`, "the metric name is given twice"},
		{"trailing_garbage", `x{a="b"} or y`, `column 10: unexpected "or y"`},
		{"name_starting_with_digit", `1x`, `column 1: unexpected "1x"`},
		{"invalid_utf8", "x{a=\"\xff\"}", "selector is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSelector(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseSelector(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

// FuzzSelector checks that the selector parser never panics and that what it accepts prints
// back (Matcher.String) to a selector that parses to the same matchers.
func FuzzSelector(f *testing.F) {
	for _, s := range []string{
		`http_requests_total`, `x{a="b",c!="d",e=~"f.*",g!~"h"}`, `{__name__=~"x.+"}`,
		`x{a='it\'s'}`, "x{a=`raw\\d`}", `x{a="\u00e9\n\x41"}`, `x{a="b",}`, ` x { } `,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseSelector(s)
		if err != nil {
			return
		}
		printed := make([]string, len(ms))
		for i, m := range ms {
			printed[i] = m.String()
		}
		again, err := ParseSelector("{" + strings.Join(printed, ",") + "}")
		if err != nil {
			t.Fatalf("%q parsed, but its printed form %q does not: %v", s, printed, err)
		}
		if len(again) != len(ms) {
			t.Fatalf("%q: %d matchers, reparsed %d", s, len(ms), len(again))
		}
		for i := range ms {
			if again[i].Type != ms[i].Type || again[i].Name != ms[i].Name || again[i].Value != ms[i].Value {
				t.Fatalf("%q: matcher %d %v reparsed as %v", s, i, ms[i], again[i])
			}
		}
	})
}

// matcherStrings prints matchers in PromQL syntax.
func matcherStrings(ms []*Matcher) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.String())
	}
	return out
}
