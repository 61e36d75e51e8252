package config

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v4"
)

// maxNodes bounds a document's size with its aliases expanded, so that a
// few lines of nested anchors cannot make the loader walk billions of
// nodes.
const maxNodes = 1 << 20

// index is where each node of a document sits, so that problems found
// after decoding (by the library or by validation) name their dotted
// path. Aliases are not followed: a value reached through an alias is
// reported where its anchor is.
type index struct {
	paths map[*yaml.Node]string // every value node, and every key (as its entry's path)
	at    map[pos]*yaml.Node    // value nodes by position, for the library's errors
	keyIn map[pos]string        // by a key's position, the path of its mapping
}

// pos is a position in the file, as the library's errors give it.
type pos struct{ line, column int }

// scan indexes the document below root and checks what the library would
// accept but the configuration does not: keys that are not plain names,
// merge keys and repeated keys are reported and removed, so that decoding
// never sees them; the other keys read as strings.
func (ps *problems) scan(n *yaml.Node, path string) {
	ps.paths[n] = path
	ps.at[pos{n.Line, n.Column}] = n
	switch n.Kind {
	case yaml.MappingNode:
		seen := map[string]int{}
		kept := make([]*yaml.Node, 0, len(n.Content))
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := deref(n.Content[i]), n.Content[i+1]
			switch line, dup := seen[k.Value]; {
			case k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge":
				ps.addLine(k.Line, path, "keys must be plain names (merge keys and complex keys are not supported)")
			case dup:
				ps.addLine(k.Line, path, "key %q is repeated (first at line %d)", k.Value, line)
			default:
				// A key is a name, whatever it would resolve to ("", "~", 1).
				k = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k.Value, Line: k.Line, Column: k.Column}
				seen[k.Value] = k.Line
				ps.paths[k] = join(path, k.Value)
				ps.keyIn[pos{k.Line, k.Column}] = path
				ps.scan(v, join(path, k.Value))
				kept = append(kept, k, v)
			}
		}
		n.Content = kept
	case yaml.SequenceNode:
		for i, v := range n.Content {
			ps.scan(v, indexPath(path, i))
		}
	}
}

// checkAliases rejects aliases that contain themselves and documents that
// grow past maxNodes once aliases are expanded. The walk memoizes sizes,
// so it is linear in the document.
func checkAliases(ps *problems, root *yaml.Node) bool {
	sizes := map[*yaml.Node]int{}
	open := map[*yaml.Node]bool{}
	var size func(n *yaml.Node) (int, bool)
	size = func(n *yaml.Node) (int, bool) {
		if s, done := sizes[n]; done {
			return s, true
		}
		if open[n] {
			ps.addLine(n.Line, "", "a value contains an alias to itself")
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
		ps.addLine(root.Line, "", "document has more than %d values once aliases are expanded", maxNodes)
		return false
	}
	return ok
}

// join extends a dotted path with a key.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath extends a dotted path with a list index.
func indexPath(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

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
