package rules

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Error is one problem in a configuration file, located by file and line so that an operator
// can go straight to it. Load and Parse join every Error they find with errors.Join.
type Error struct {
	// File is the path of the file as the loader was given it (or found it by glob).
	File string
	// Line is 1-based; 0 when the problem concerns the whole file.
	Line int
	// Msg says what is wrong and, where it can, what to write instead.
	Msg string
}

// Error formats the problem as "file:line: message", the shape editors and CI logs link to.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// problems collects the errors and warnings of one load, so that every problem is reported
// at once instead of one per run.
type problems struct {
	errs     []*Error
	warnings []*Error
	// files remembers the order in which files were first seen, to report in that order.
	files []string
}

// errorf records an error at file:line.
func (p *problems) errorf(file string, line int, format string, args ...any) {
	p.add(&p.errs, &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// warnf records a warning at file:line.
func (p *problems) warnf(file string, line int, format string, args ...any) {
	p.add(&p.warnings, &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// addErrors records errors that were already located (by the decoder or the env expander).
func (p *problems) addErrors(errs []*Error) {
	for _, e := range errs {
		p.add(&p.errs, e)
	}
}

func (p *problems) add(list *[]*Error, e *Error) {
	p.seeFile(e.File)
	*list = append(*list, e)
}

// seeFile records that file is read now, so its problems are reported after those of the
// files read before it, whatever order they are found in.
func (p *problems) seeFile(file string) {
	if !slices.Contains(p.files, file) {
		p.files = append(p.files, file)
	}
}

// failed reports whether any error has been recorded.
func (p *problems) failed() bool { return len(p.errs) > 0 }

// err joins the errors, ordered by file (in the order files were read) and line.
func (p *problems) err() error {
	errs := make([]error, 0, len(p.errs))
	for _, e := range p.sorted(p.errs) {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// warningStrings returns the warnings as "file:line: message", ordered like errors.
func (p *problems) warningStrings() []string {
	var out []string
	for _, w := range p.sorted(p.warnings) {
		out = append(out, w.Error())
	}
	return out
}

func (p *problems) sorted(list []*Error) []*Error {
	out := slices.Clone(list)
	slices.SortStableFunc(out, func(a, b *Error) int {
		if c := cmp.Compare(slices.Index(p.files, a.File), slices.Index(p.files, b.File)); c != 0 {
			return c
		}
		return cmp.Compare(a.Line, b.Line)
	})
	return out
}
