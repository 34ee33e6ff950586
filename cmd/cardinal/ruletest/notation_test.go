package ruletest

import (
	"fmt"
	"strings"
	"testing"
)

func render(vs []value) string {
	var parts []string
	for _, v := range vs {
		switch {
		case v.missing:
			parts = append(parts, "_")
		case v.stale:
			parts = append(parts, "stale")
		default:
			parts = append(parts, fmt.Sprint(v.v))
		}
	}
	return strings.Join(parts, " ")
}

func TestParseValues(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{in: "1 2 3", want: "1 2 3"},
		{in: "0+10x3", want: "0 10 20 30"},
		{in: "10-2x2", want: "10 8 6"},
		{in: "-5+1x1", want: "-5 -4"},
		{in: "1e3+1e2x1", want: "1000 1100"},
		{in: "7x2", want: "7 7 7"},
		{in: "_x3 1", want: "_ _ _ 1"},
		{in: "1 _ stale 2", want: "1 _ stale 2"},
		{in: "Inf -Inf", want: "+Inf -Inf"},
		{in: "", want: ""},
		{in: "abc", err: `"abc" is not a number`},
		{in: "1+2xq", err: "repetition"},
		{in: "1+2x-1", err: "repetition"},
		{in: "0+1x999999999", err: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseValues(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r := render(got); r != tt.want {
				t.Errorf("got %q, want %q", r, tt.want)
			}
		})
	}
}

func FuzzParseValues(f *testing.F) {
	for _, s := range []string{"1 2 3", "0+10x3", "_x3 stale", "1e3-2x5", "-Inf+1x2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		vs, err := parseValues(s)
		if err == nil && len(vs) > maxExpansion {
			t.Fatalf("%q expanded to %d values", s, len(vs))
		}
	})
}
