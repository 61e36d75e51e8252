package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	list []*problem
}

// addf records a problem at a line under a path.
func (ps *problems) addf(line int, path, format string, args ...any) {
	ps.list = append(ps.list, &problem{file: ps.file, line: line, path: path, msg: fmt.Sprintf(format, args...)})
}

// clean reports whether no problem was found at path or below it.
func (ps *problems) clean(path string) bool {
	for _, p := range ps.list {
		if rest, ok := strings.CutPrefix(p.path, path); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
			return false
		}
	}
	return true
}

// err returns the problems in line order, joined, or nil when there are
// none.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	slices.SortStableFunc(ps.list, func(a, b *problem) int { return cmp.Compare(a.line, b.line) })
	errs := make([]error, len(ps.list))
	for i, p := range ps.list {
		errs[i] = p
	}
	return errors.Join(errs...)
}
