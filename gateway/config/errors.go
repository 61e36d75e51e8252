package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v4"
)

// problem is one thing wrong with a configuration file, at a line. It
// reads "FILE:LINE: PATH: problem".
type problem struct {
	file string
	line int
	path string // dotted, e.g. "versions.v1.resources.orders"; may be empty
	msg  string
}

func (p *problem) Error() string {
	if p.path == "" {
		return fmt.Sprintf("%s:%d: %s", p.file, p.line, p.msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", p.file, p.line, p.path, p.msg)
}

// problems collects everything wrong with one file, so that a single load
// reports all of it.
type problems struct {
	file string
	index
	list []*problem
}

// at is where a value of the document was found: its node (nil when the
// value is absent), and optionally a key below it that the problem is
// about. Structs get their mapping's in a field "At at `yaml:",inline"`".
type at struct {
	n   *yaml.Node
	key string
}

// UnmarshalYAML records the node.
func (a *at) UnmarshalYAML(n *yaml.Node) error {
	a.n = n
	return nil
}

// found reports whether the value was in the document.
func (a at) found() bool { return a.n != nil }

// line is the value's line; 0 when it is absent.
func (a at) line() int {
	if a.n == nil {
		return 0
	}
	return a.n.Line
}

// under is the place of a key below the value, at the value's line.
func (a at) under(key string) at { return at{a.n, join(a.key, key)} }

// addf records a problem with the value at a.
func (ps *problems) addf(a at, format string, args ...any) {
	path := ps.paths[a.n]
	if a.key != "" {
		path = join(path, a.key)
	}
	ps.addLine(max(a.line(), 1), path, format, args...)
}

// addLine records a problem at a line under a path.
func (ps *problems) addLine(line int, path, format string, args ...any) {
	ps.list = append(ps.list, &problem{file: ps.file, line: line, path: path, msg: fmt.Sprintf(format, args...)})
}

// clean reports whether no problem was found at a's path or below it.
func (ps *problems) clean(a at) bool {
	path := ps.paths[a.n]
	for _, p := range ps.list {
		if rest, ok := strings.CutPrefix(p.path, path); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
			return false
		}
	}
	return true
}

// err returns the problems in line order, joined, or nil when there are
// none. A problem found twice (in a value an alias repeats) is listed
// once.
func (ps *problems) err() error {
	slices.SortStableFunc(ps.list, func(a, b *problem) int { return cmp.Compare(a.line, b.line) })
	var errs []error
	for i, p := range ps.list {
		if i == 0 || *p != *ps.list[i-1] {
			errs = append(errs, p)
		}
	}
	return errors.Join(errs...)
}

// invalid is what a value of the document gets wrong; the decoding types
// of decode.go return it, and the library passes it on inside its own
// errors.
type invalid struct {
	at
	msg string
}

func (e *invalid) Error() string { return e.msg }

// invalidf makes an invalid at a node.
func invalidf(n *yaml.Node, format string, args ...any) error {
	return &invalid{at{n: n}, fmt.Sprintf(format, args...)}
}

// decoding records the problems of a decoding error: the invalid values
// it carries, and the library's own findings (an unknown key, a value
// where a mapping belongs) in the words of the rest of the problems.
func (ps *problems) decoding(err error) {
	var (
		joined interface{ Unwrap() []error }
		all    *yaml.LoadErrors
		inv    *invalid
		one    *yaml.LoadError
	)
	switch {
	case err == nil:
	case errors.As(err, &joined): // ours, passed on by the library
		for _, err := range joined.Unwrap() {
			ps.decoding(err)
		}
	case errors.As(err, &all):
		for _, err := range all.Errors {
			ps.decoding(err)
		}
	case errors.As(err, &inv):
		ps.addf(inv.at, "%s", inv.msg)
	case errors.As(err, &one):
		ps.library(one)
	default:
		ps.addLine(1, "", "%v", err)
	}
}

// library reports one of the library's errors: with strict decoding, a
// key of no field is unknown; a plain struct given anything but a mapping
// cannot be filled. Others keep the library's words.
func (ps *problems) library(e *yaml.LoadError) {
	p := pos{e.Mark.Line, e.Mark.Column}
	if path, ok := ps.keyIn[p]; ok && strings.HasPrefix(e.Message, "field ") {
		key, _, _ := strings.Cut(strings.TrimPrefix(e.Message, "field "), " not found in type ")
		ps.addLine(e.Mark.Line, path, "unknown key %q", key)
		return
	}
	n := ps.at[p]
	switch {
	case n == nil:
		ps.addLine(max(e.Mark.Line, 1), "", "%s", e.Message)
	case strings.HasPrefix(e.Message, "cannot construct "):
		ps.addf(at{n: n}, "expected a mapping, got %s", describe(n))
	default:
		ps.addf(at{n: n}, "%s", e.Message)
	}
}
