package config

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// expandEnv substitutes ${NAME} with the value of the environment variable NAME and $$ with a
// single $, in a YAML document's text. A $ followed by anything else stays as it is, so regexps
// such as "^/api$" need no escaping. Comments are left untouched, so a commented-out line may
// mention a variable that is not set. Every unset variable is reported, at its line.
//
// Values are inserted as text, so they may not contain a line break (that would move every
// following line and could change the document's structure): put such values in a file.
func expandEnv(data []byte, file string, lookup func(string) (string, bool)) ([]byte, []*setting.Problem) {
	var out bytes.Buffer
	out.Grow(len(data))
	var errs []*setting.Problem
	for i, line := range bytes.SplitAfter(data, []byte("\n")) {
		for _, msg := range expandLine(&out, string(line), lookup) {
			errs = append(errs, &setting.Problem{File: file, Line: i + 1, Msg: msg})
		}
	}
	return out.Bytes(), errs
}

// expandLine writes one line, expanded, to out and returns the problems found in it. It tracks
// single- and double-quoted scalars only to tell a comment's # from a # inside a string.
func expandLine(out *bytes.Buffer, line string, lookup func(string) (string, bool)) []string {
	var problems []string
	inSingle, inDouble := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '#' && !inSingle && !inDouble && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			out.WriteString(line[i:])
			return problems
		case c == '$':
			n, problem := expandDollar(out, line[i:], lookup)
			if problem != "" {
				problems = append(problems, problem)
			}
			i += n - 1
			continue
		case inDouble && c == '\\' && i+1 < len(line):
			out.WriteByte(c)
			i++
			c = line[i]
		case c == '"' && !inSingle && inDouble:
			inDouble = false
		case c == '"' && !inSingle:
			inDouble = startsScalar(line[:i])
		case c == '\'' && !inDouble:
			switch {
			case inSingle && i+1 < len(line) && line[i+1] == '\'':
				out.WriteByte(c) // '' is an escaped quote inside a single-quoted scalar
				i++
			case inSingle:
				inSingle = false
			default:
				inSingle = startsScalar(line[:i])
			}
		}
		out.WriteByte(c)
	}
	return problems
}

// startsScalar reports whether a quote after before opens a quoted scalar (rather than being
// a character inside a plain one like don't).
func startsScalar(before string) bool {
	t := strings.TrimRight(before, " \t")
	if t == "" {
		return true
	}
	if len(t) == len(before) {
		return strings.ContainsAny(t[len(t)-1:], "[{,") // flow collections need no space
	}
	return strings.ContainsAny(t[len(t)-1:], ":-[{,?")
}

// expandDollar handles the $ at the start of s: it writes the replacement and returns how
// many bytes of s it consumed and a problem, if any.
func expandDollar(out *bytes.Buffer, s string, lookup func(string) (string, bool)) (int, string) {
	switch {
	case strings.HasPrefix(s, "$$"):
		out.WriteByte('$')
		return 2, ""
	case !strings.HasPrefix(s, "${"):
		out.WriteByte('$')
		return 1, ""
	}
	end := strings.IndexByte(s, '}')
	if end < 0 {
		out.WriteString(s)
		return len(s), "unterminated ${ (write $$ for a literal $)"
	}
	name := s[2:end]
	if !validEnvName(name) {
		out.WriteString(s[:end+1])
		return end + 1, fmt.Sprintf("invalid environment variable reference %q: write ${NAME} with NAME made of letters, digits and _ (defaults like ${NAME:-x} are not supported; $$ is a literal $)", s[:end+1])
	}
	value, ok := lookup(name)
	switch {
	case !ok:
		return end + 1, fmt.Sprintf("environment variable %q is not set (write $${%s} for the literal text)", name, name)
	case strings.ContainsAny(value, "\r\n"):
		return end + 1, fmt.Sprintf("environment variable %q contains a line break; put multi-line values in a file (e.g. password_file)", name)
	}
	out.WriteString(value)
	return end + 1, ""
}

func validEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
