package setting

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Problem is one problem in a configuration file, located by file and line so that an
// operator can go straight to it. A load joins every Problem it finds with errors.Join.
type Problem struct {
	// File is the path of the file as the loader was given it (or found it by glob).
	File string
	// Line is 1-based; 0 when the problem concerns the whole file.
	Line int
	// Msg says what is wrong and, where it can, what to write instead.
	Msg string
}

// Error formats the problem as "file:line: message", the shape editors and CI logs link to.
func (e *Problem) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Problems collects the errors and warnings of one load, so that every problem is reported
// at once instead of one per run. The zero value is ready to use.
type Problems struct {
	errs     []*Problem
	warnings []*Problem
	// files remembers the order in which files were first seen, to report in that order.
	files []string
}

// Errorf records an error at file:line.
func (p *Problems) Errorf(file string, line int, format string, args ...any) {
	p.add(&p.errs, &Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// Warnf records a warning at file:line.
func (p *Problems) Warnf(file string, line int, format string, args ...any) {
	p.add(&p.warnings, &Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// AddErrors records errors that were already located (by the decoder or the env expander).
func (p *Problems) AddErrors(errs []*Problem) {
	for _, e := range errs {
		p.add(&p.errs, e)
	}
}

func (p *Problems) add(list *[]*Problem, e *Problem) {
	p.SeeFile(e.File)
	*list = append(*list, e)
}

// SeeFile records that file is read now, so its problems are reported after those of the
// files read before it, whatever order they are found in.
func (p *Problems) SeeFile(file string) {
	if !slices.Contains(p.files, file) {
		p.files = append(p.files, file)
	}
}

// ErrorCount is the number of errors recorded so far.
func (p *Problems) ErrorCount() int { return len(p.errs) }

// Failed reports whether any error has been recorded.
func (p *Problems) Failed() bool { return len(p.errs) > 0 }

// Err joins the errors, ordered by file (in the order files were read) and line.
func (p *Problems) Err() error {
	errs := make([]error, 0, len(p.errs))
	for _, e := range p.sorted(p.errs) {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// Warnings returns the warnings as "file:line: message", ordered like errors.
func (p *Problems) Warnings() []string {
	var out []string
	for _, w := range p.sorted(p.warnings) {
		out = append(out, w.Error())
	}
	return out
}

func (p *Problems) sorted(list []*Problem) []*Problem {
	out := slices.Clone(list)
	slices.SortStableFunc(out, func(a, b *Problem) int {
		if c := cmp.Compare(slices.Index(p.files, a.File), slices.Index(p.files, b.File)); c != 0 {
			return c
		}
		return cmp.Compare(a.Line, b.Line)
	})
	return out
}
