package config

import (
	"errors"
	"time"

	"go.yaml.in/yaml/v4"
)

// The library decodes the document into the yaml-tagged structs of
// yaml.go, strictly (a key of no field is a problem). The types below are
// its leaves: each keeps the node it was read from, so that validation
// names its line and path, and reads its value in the words of the rest
// of the problems, returning an invalid when it cannot.

// load decodes n into v strictly.
func load(n *yaml.Node, v any) error { return n.Load(v, yaml.WithKnownFields()) }

// Leaf types: what a scalar decodes to besides string (never empty),
// bool, int64 and time.Duration (never negative).
type (
	// text is a string that may be empty.
	text string
	// positive is a duration greater than zero.
	positive time.Duration
)

// val is a value the document may set, with where it was set. T is a leaf
// type, *yaml.Node (kept as written), []string (of non-empty strings),
// Access, or a type the library decodes.
type val[T any] struct {
	V   T
	Set bool // present and not null (even when V could not be read)
	OK  bool // V was read
	at
}

// UnmarshalYAML reads the value; the library calls it for values that are
// present and not null.
func (f *val[T]) UnmarshalYAML(n *yaml.Node) error {
	f.Set, f.at = true, at{n: n}
	var err error
	switch p := any(&f.V).(type) {
	case *string:
		*p, err = name(n)
	case *text:
		var s string
		s, err = str(n)
		*p = text(s)
	case *bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(p) != nil {
			err = invalidf(n, "expected true or false, got %s", describe(n))
		}
	case *int64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(p) != nil {
			err = invalidf(n, "expected an integer, got %s", describe(n))
		}
	case *time.Duration:
		*p, err = duration(n, false)
	case *positive:
		var d time.Duration
		d, err = duration(n, true)
		*p = positive(d)
	case **yaml.Node:
		*p = n
	case *[]string:
		*p, err = names(n)
	case *Access:
		err = readAccess(p, n)
	default:
		err = load(n, &f.V)
	}
	f.OK = err == nil
	return err
}

// or returns the value when it was read, else def.
func (f val[T]) or(def T) T {
	if f.OK && f.Set {
		return f.V
	}
	return def
}

// seq is a list whose items are all read, nulls too: a null is given to
// the item's own UnmarshalYAML (a string says it expected a string), or
// reported where a mapping belongs.
type seq[T any] []T

// UnmarshalYAML reads the items.
func (l *seq[T]) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return invalidf(n, "expected a list, got %s", describe(n))
	}
	var errs []error
	for _, item := range n.Content {
		var v T
		switch u, ok := any(&v).(yaml.Unmarshaler); {
		case !isNull(item):
			errs = append(errs, load(item, &v))
		case ok:
			errs = append(errs, u.UnmarshalYAML(deref(item)))
		default:
			errs = append(errs, invalidf(deref(item), "expected a mapping, got null"))
		}
		*l = append(*l, v)
	}
	return errors.Join(errs...)
}

// entry is one key of a mapping whose keys are names (services, versions,
// resources).
type entry[T any] struct {
	Key  string
	Null bool // the value is null
	V    T
	at   // the key's
}

// entries is a mapping whose keys are names, in document order.
type entries[T any] []entry[T]

// UnmarshalYAML reads the entries.
func (es *entries[T]) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return invalidf(n, "expected a mapping, got %s", describe(n))
	}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		e := entry[T]{Key: k.Value, Null: isNull(v), at: at{n: k}}
		errs = append(errs, load(v, &e.V))
		*es = append(*es, e)
	}
	return errors.Join(errs...)
}

// str reads a scalar as a string (so "port: 9000" reads as "9000").
func str(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return "", invalidf(n, "expected a string, got %s", describe(n))
	}
	return n.Value, nil
}

// name reads a string that must not be empty.
func name(n *yaml.Node) (string, error) {
	s, err := str(n)
	if err == nil && s == "" {
		return "", invalidf(n, "must not be empty")
	}
	return s, err
}

// names reads a list of non-empty strings.
func names(n *yaml.Node) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, invalidf(n, "expected a list, got %s", describe(n))
	}
	var out []string
	var errs []error
	for _, v := range n.Content {
		s, err := name(deref(v))
		if err == nil {
			out = append(out, s)
		}
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// duration reads a Go duration string such as "5s" or "1m30s"; negative
// durations, and zero when nonZero is set, are refused.
func duration(n *yaml.Node, nonZero bool) (time.Duration, error) {
	s, err := str(n)
	if err != nil {
		return 0, err
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, invalidf(n, "expected a duration such as \"5s\" or \"1m30s\", got %q", s)
	case v < 0 || (nonZero && v == 0):
		return v, invalidf(n, "duration must be positive, got %q", s)
	}
	return v, nil
}
