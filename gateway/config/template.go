package config

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Template is a step's id or body, compiled once when the configuration
// loads. The grammar of the strings in it is
//
//	template  = { text | "${" reference "}" }
//	reference = "path.id" | "body" { "." part } | "caller.subject"
//	          | "caller.roles" | step { "." part }
//	part      = letters, digits, "-" and "_", at least one
//
// where step names a step that finishes before this one starts (for an
// undo, also the step it undoes), and ${path.id} needs a route with an id.
// A string that is one reference whole takes the referenced JSON value
// and type; references inside a longer string are replaced by their text
// (a string as it is, nothing for a missing value, other values as JSON).
// Every value that is not a string is kept as written.
type Template struct {
	src  any // as written: a string for an id, the decoded YAML for a body
	node tnode
}

// Scope is what a running template reads.
type Scope interface {
	// Root is the value a reference starts from: "path" is a mapping with
	// "id", "caller" one with "subject" and "roles" ([]any), "body" the
	// request body and any other name that step's result; nil when
	// absent. Results and bodies are JSON decoded with UseNumber.
	Root(name string) any
}

// Eval runs the template. The result may share constant parts with the
// template: callers must not modify it.
func (t *Template) Eval(sc Scope) any { return t.node.eval(sc) }

// Text runs the template for use as an id: ok is false when the value is
// missing, a mapping or a list.
func (t *Template) Text(sc Scope) (s string, ok bool) {
	switch v := t.Eval(sc).(type) {
	case nil, map[string]any, []any:
		return "", false
	default:
		return render(v), true
	}
}

// String returns the template as written, for messages.
func (t *Template) String() string {
	if s, ok := t.src.(string); ok {
		return s
	}
	b, _ := json.Marshal(t.src)
	return string(b)
}

// MarshalJSON encodes the template as written.
func (t *Template) MarshalJSON() ([]byte, error) { return json.Marshal(t.src) }

// tnode is one compiled value of a template.
type tnode interface{ eval(Scope) any }

// literal is a value without references.
type literal struct{ v any }

func (n literal) eval(Scope) any { return n.v }

// reference is a compiled ${root.field.…}.
type reference struct {
	root   string
	fields []string
}

func (r *reference) eval(sc Scope) any {
	v := sc.Root(r.root)
	for _, f := range r.fields {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[f]
	}
	return v
}

// String returns the reference as written, without "${" and "}".
func (r *reference) String() string {
	return strings.Join(append([]string{r.root}, r.fields...), ".")
}

// interpolation is a string of literal text and references.
type interpolation []tnode

func (n interpolation) eval(sc Scope) any {
	var b strings.Builder
	for _, p := range n {
		b.WriteString(render(p.eval(sc)))
	}
	return b.String()
}

// object and list are mappings and lists with references inside.
type object map[string]tnode
type list []tnode

func (n object) eval(sc Scope) any {
	out := make(map[string]any, len(n))
	for k, v := range n {
		out[k] = v.eval(sc)
	}
	return out
}

func (n list) eval(sc Scope) any {
	out := make([]any, len(n))
	for i, v := range n {
		out[i] = v.eval(sc)
	}
	return out
}

// render renders a value for use inside a string or as an id.
func render(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case json.Number:
		return t.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// parseString compiles one string of a template. It returns the compiled
// node, the references in it (for the loader to check against the
// step's scope) and the syntax problems; it stops at an unterminated
// reference.
func parseString(s string) (n tnode, refs []*reference, problems []string) {
	var parts interpolation
	rest := s
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			break
		}
		if i > 0 {
			parts = append(parts, literal{rest[:i]})
		}
		rest = rest[i+2:]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			problems = append(problems, fmt.Sprintf("unterminated reference in %q", s))
			return literal{s}, refs, problems
		}
		if r, ok := parseReference(rest[:j]); ok {
			parts = append(parts, r)
			refs = append(refs, r)
		} else {
			problems = append(problems, fmt.Sprintf("malformed reference ${%s}: want ${path.id}, ${body.FIELD}, ${caller.subject}, ${caller.roles} or ${STEP.FIELD}", rest[:j]))
		}
		rest = rest[j+1:]
	}
	if rest != "" {
		parts = append(parts, literal{rest})
	}
	switch {
	case len(refs) == 0 || len(problems) > 0:
		return literal{s}, refs, problems
	case len(parts) == 1:
		return parts[0], refs, nil // one reference whole: keeps the value's type
	}
	return parts, refs, nil
}

// parseReference splits a reference into its dotted parts, each of
// letters, digits, "-" and "_".
func parseReference(s string) (*reference, bool) {
	parts := strings.Split(s, ".")
	for _, p := range parts {
		if !isRefPart(p) {
			return nil, false
		}
	}
	return &reference{root: parts[0], fields: parts[1:]}, true
}

// isRefPart reports whether s is one part of a reference, or a step name.
func isRefPart(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
