package setting

import (
	"errors"
	"fmt"
)

// Key is the path of a setting inside its component's section: map keys (string) and list
// indexes (int), e.g. Key{"queue", "shards"} or Key{"headers", "X-Scope-OrgID"}. An empty Key
// means the section itself.
type Key []any

// At builds a Key.
func At(path ...any) Key { return Key(path) }

// Errorf is a problem with the setting at k. The message names the setting as a user writes
// it ("queue.shards must be at most 1024, not 5000"); the file and line are added by whoever
// knows them, so the same message is given by `cardinal check config` and by a constructor.
func (k Key) Errorf(format string, args ...any) *Error {
	return &Error{Key: k, Msg: fmt.Sprintf(format, args...)}
}

// Error is a problem with one setting, as a component's Validate reports it.
type Error struct {
	// Key locates the setting inside the section that was validated.
	Key Key
	// Msg says what is wrong and, where it can, what to write instead.
	Msg string
}

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

// Errors returns the problems err holds: every *Error in the tree of errors.Join, and any
// other error as a problem with the section itself.
func Errors(err error) []*Error {
	if err == nil {
		return nil
	}
	if se, ok := err.(*Error); ok {
		return []*Error{se}
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*Error
		for _, e := range j.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	if se := (*Error)(nil); errors.As(err, &se) {
		return []*Error{{Key: se.Key, Msg: err.Error()}}
	}
	return []*Error{{Msg: err.Error()}}
}

// Within places the problems of err, reported by a block of settings, under the block's key
// in the section that holds it, prefixing each message with prefix (which names the block
// as a user writes it). It returns nil for nil.
func Within(err error, key any, prefix string) error {
	var out []error
	for _, e := range Errors(err) {
		out = append(out, &Error{Key: append(At(key), e.Key...), Msg: prefix + e.Msg})
	}
	return errors.Join(out...)
}
