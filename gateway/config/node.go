package config

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds a document's size with its aliases expanded, so that a
// few lines of nested anchors cannot make the loader walk billions of
// nodes.
const maxNodes = 1 << 20

// decoder walks YAML nodes, reporting every mismatch with its line. Its
// methods return ok false after reporting, so callers only skip the value.
type decoder struct {
	*problems
}

// join extends a dotted path with a key.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// index extends a dotted path with a list index.
func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// deref follows aliases to the node they name. checkAliases has ruled out
// cycles before any walk.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is absent or an explicit null.
func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what a node holds, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n = deref(n); {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.ShortTag() == "!!null":
		return "null"
	}
	return strconv.Quote(n.Value)
}

// checkAliases rejects aliases that contain themselves and documents that
// grow past maxNodes once aliases are expanded. The walk memoizes sizes,
// so it is linear in the document.
func (d *decoder) checkAliases(root *yaml.Node) bool {
	sizes := map[*yaml.Node]int{}
	open := map[*yaml.Node]bool{}
	var size func(n *yaml.Node) (int, bool)
	size = func(n *yaml.Node) (int, bool) {
		if n == nil {
			return 0, true
		}
		if s, done := sizes[n]; done {
			return s, true
		}
		if open[n] {
			d.addf(n.Line, "", "a value contains an alias to itself")
			return 0, false
		}
		open[n] = true
		kids := n.Content
		if n.Kind == yaml.AliasNode {
			kids = []*yaml.Node{n.Alias}
		}
		total := 1
		for _, k := range kids {
			s, ok := size(k)
			if !ok {
				return 0, false
			}
			total = min(total+s, maxNodes+1)
		}
		delete(open, n)
		sizes[n] = total
		return total, true
	}
	s, ok := size(root)
	if ok && s > maxNodes {
		d.addf(root.Line, "", "document has more than %d values once aliases are expanded", maxNodes)
		return false
	}
	return ok
}

// pairs calls fn for each entry of a mapping in document order, with the
// entry's path. It reports a node that is not a mapping, keys that are not
// plain scalars, and repeated keys.
func (d *decoder) pairs(n *yaml.Node, path string, fn func(k, v *yaml.Node, path string)) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.addf(n.Line, path, "expected a mapping, got %s", describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			d.addf(k.Line, path, "keys must be plain names (merge keys and complex keys are not supported)")
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.addf(k.Line, path, "key %q is repeated (first at line %d)", k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		fn(k, v, join(path, k.Value))
	}
}

// items calls fn for each element of a list, with its path. It reports a
// node that is not a list.
func (d *decoder) items(n *yaml.Node, path string, fn func(i int, v *yaml.Node, path string)) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.addf(n.Line, path, "expected a list, got %s", describe(n))
		return
	}
	for i, v := range n.Content {
		fn(i, v, index(path, i))
	}
}

// str reads a scalar as a string (so "port: 9000" reads as "9000").
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		d.addf(n.Line, path, "expected a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// name reads a string that must not be empty.
func (d *decoder) name(n *yaml.Node, path string) (string, bool) {
	s, ok := d.str(n, path)
	if ok && s == "" {
		d.addf(deref(n).Line, path, "must not be empty")
		return "", false
	}
	return s, ok
}

// names reads a list of non-empty strings.
func (d *decoder) names(n *yaml.Node, path string) []string {
	var out []string
	d.items(n, path, func(_ int, v *yaml.Node, p string) {
		if s, ok := d.name(v, p); ok {
			out = append(out, s)
		}
	})
	return out
}

// duration reads a Go duration string such as "5s" or "1m30s"; negative
// durations, and zero when nonZero is set, are reported.
func (d *decoder) duration(n *yaml.Node, path string, nonZero bool) time.Duration {
	n = deref(n)
	s, ok := d.str(n, path)
	if !ok {
		return 0
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.addf(n.Line, path, "expected a duration such as \"5s\" or \"1m30s\", got %q", s)
	case v < 0 || (nonZero && v == 0):
		d.addf(n.Line, path, "duration must be positive, got %q", s)
	}
	return v
}

// value decodes a YAML value to the types encoding/json produces and
// takes, except that integers stay exact: map[string]any, []any, string,
// int64 (every YAML integer), float64 (every other number; never NaN or
// infinite), bool and nil. Timestamps stay strings. It returns the value
// and its template, in which str compiles every string that is a value
// (not a key), given its line and path.
func (d *decoder) value(n *yaml.Node, path string, str func(s string, line int, path string) tnode) (any, tnode) {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		src, obj, constant := map[string]any{}, object{}, true
		d.pairs(n, path, func(k, v *yaml.Node, p string) {
			src[k.Value], obj[k.Value] = d.value(v, p, str)
			_, lit := obj[k.Value].(literal)
			constant = constant && lit
		})
		if constant {
			return src, literal{src}
		}
		return src, obj
	case yaml.SequenceNode:
		src, l, constant := make([]any, len(n.Content)), make(list, len(n.Content)), true
		for i, v := range n.Content {
			src[i], l[i] = d.value(v, index(path, i), str)
			_, lit := l[i].(literal)
			constant = constant && lit
		}
		if constant {
			return src, literal{src}
		}
		return src, l
	case yaml.ScalarNode:
		v := d.scalar(n, path)
		if s, ok := v.(string); ok {
			return s, str(s, n.Line, path)
		}
		return v, literal{v}
	}
	return nil, literal{}
}

// scalar decodes one scalar for value; nil after reporting a problem.
func (d *decoder) scalar(n *yaml.Node, path string) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err == nil {
			return b
		}
		d.addf(n.Line, path, "expected true or false, got %q", n.Value)
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return i
		}
		d.addf(n.Line, path, "integer %s does not fit in 64 bits", n.Value)
	case "!!float":
		var f float64
		if err := n.Decode(&f); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
		d.addf(n.Line, path, "number %s has no JSON form", n.Value)
	case "!!str", "!!timestamp":
		return n.Value
	default:
		d.addf(n.Line, path, "unsupported YAML tag %s", n.Tag)
	}
	return nil
}
