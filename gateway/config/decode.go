package config

import (
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The loader decodes the document into the yaml-tagged structs of
// yaml.go, then validates them in plain Go. Decoding reports what the
// document's shape gets wrong (unknown and repeated keys, a list where a
// mapping belongs, a word where a number belongs) and every value keeps
// its line and dotted path, so that validation names them too.

// unmarshaler is a type that decodes itself from a node; decode calls it
// for every value, absent and null ones excepted.
type unmarshaler interface {
	unmarshal(d *decoder, n *yaml.Node, path string)
}

// at is where a value was found. Structs with a field "At at" get their
// mapping's.
type at struct {
	Line int
	Path string
}

// decode fills v from n: an unmarshaler decodes itself; a struct reads a
// mapping whose keys are its fields' yaml tags (others are reported); a
// slice reads a list; a pointer is allocated. Absent and null nodes leave
// v as it is.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	if !isNull(n) {
		d.decodeValue(n, path, v)
	}
}

// decodeValue is decode for a list's items, where a null is a value: an
// unmarshaler reads it, and a struct takes it for an empty mapping.
func (d *decoder) decodeValue(n *yaml.Node, path string, v reflect.Value) {
	if u, ok := v.Addr().Interface().(unmarshaler); ok {
		u.unmarshal(d, deref(n), path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		d.decode(n, path, v.Elem())
	case reflect.Slice:
		d.items(n, path, func(_ int, item *yaml.Node, p string) {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decodeValue(item, p, e)
			v.Set(reflect.Append(v, e))
		})
	case reflect.Struct:
		d.mapping(n, path, v)
	default:
		panic("config: cannot decode into " + v.Type().String())
	}
}

// mapping decodes a mapping into a struct's yaml-tagged fields.
func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	if n = deref(n); n.Kind != yaml.MappingNode && !isNull(n) {
		d.addf(n.Line, path, "expected a mapping, got %s", describe(n))
		return
	}
	if f := v.FieldByName("At"); f.IsValid() {
		f.Set(reflect.ValueOf(at{n.Line, path}))
	}
	d.pairs(n, path, func(k, val *yaml.Node, p string) {
		if f, ok := field(v, k.Value); ok {
			d.decode(val, p, f)
		} else {
			d.addf(k.Line, path, "unknown key %q", k.Value)
		}
	})
}

// mappingOf decodes a mapping into the struct v points to, reporting any
// other node as not being what ("a step") it should be.
func (d *decoder) mappingOf(n *yaml.Node, path, what string, v any) {
	if n.Kind != yaml.MappingNode {
		d.addf(n.Line, path, "expected %s (a mapping), got %s", what, describe(n))
		return
	}
	d.mapping(n, path, reflect.ValueOf(v).Elem())
}

// field finds the struct field whose yaml tag is key, in embedded structs
// too.
func field(v reflect.Value, key string) (reflect.Value, bool) {
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		if sf.Anonymous {
			if f, ok := field(v.Field(i), key); ok {
				return f, true
			}
		} else if name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ","); name != "" && name == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// Leaf types: what a scalar decodes to besides string (never empty),
// bool, int64 and time.Duration (never negative).
type (
	// text is a string that may be empty.
	text string
	// positive is a duration greater than zero.
	positive time.Duration
)

// val is a value the document may set, with where it was set. T is a leaf
// type, *yaml.Node (kept as written), []string (of non-empty strings) or
// any type decode takes.
type val[T any] struct {
	V   T
	Set bool // present and not null (even when V could not be read)
	OK  bool // V was read
	at
}

func (f *val[T]) unmarshal(d *decoder, n *yaml.Node, path string) {
	f.Set, f.at = true, at{n.Line, path}
	before := len(d.list)
	switch p := any(&f.V).(type) {
	case *string:
		*p, _ = d.name(n, path)
	case *text:
		s, _ := d.str(n, path)
		*p = text(s)
	case *bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(p) != nil {
			d.addf(n.Line, path, "expected true or false, got %s", describe(n))
		}
	case *int64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(p) != nil {
			d.addf(n.Line, path, "expected an integer, got %s", describe(n))
		}
	case *time.Duration:
		*p = d.duration(n, path, false)
	case *positive:
		*p = positive(d.duration(n, path, true))
	case **yaml.Node:
		*p = n
	case *[]string:
		*p = d.names(n, path)
	default:
		d.decode(n, path, reflect.ValueOf(&f.V).Elem())
	}
	f.OK = len(d.list) == before
}

// or returns the value when it was read, else def.
func (f val[T]) or(def T) T {
	if f.OK && f.Set {
		return f.V
	}
	return def
}

// entry is one key of a mapping whose keys are names (services, versions,
// resources).
type entry[T any] struct {
	Key  string
	Null bool // the value is absent or null
	V    T
	at   // the key's
}

// entries is a mapping whose keys are names, in document order.
type entries[T any] []entry[T]

func (es *entries[T]) unmarshal(d *decoder, n *yaml.Node, path string) {
	d.pairs(n, path, func(k, v *yaml.Node, p string) {
		e := entry[T]{Key: k.Value, Null: isNull(v), at: at{k.Line, p}}
		d.decode(v, p, reflect.ValueOf(&e.V).Elem())
		*es = append(*es, e)
	})
}
