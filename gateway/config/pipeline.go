package config

import (
	"iter"
	"maps"
	"math"
	"slices"
	"strings"

	"go.yaml.in/yaml/v4"
)

// scope is what the references of a pipeline step may name.
type scope struct {
	item    bool            // the route has an id, so ${path.id} is defined
	defined map[string]int  // every step name so far → its line
	earlier map[string]bool // the steps that finish before the current one starts
}

// pipelines checks the steps of pipelines and compiles their templates.
type pipelines struct {
	*problems
	serviceRef func(val[string]) string // checks a service's name
}

// pipeline checks a route's steps. service is the default for steps that
// name none; item says whether the route's path has an id.
func (c pipelines) pipeline(y val[yamlSteps], service string, item bool) []*Step {
	sc := &scope{item: item, defined: map[string]int{}, earlier: map[string]bool{}}
	var out []*Step
	for _, ys := range y.V {
		s := c.step(ys, service, sc, false)
		if s == nil {
			continue
		}
		out = append(out, s)
		for _, name := range stepNames([]*Step{s}) {
			sc.earlier[name] = true
		}
	}
	return out
}

// stepNames lists the names of steps, inside parallel groups too.
func stepNames(steps []*Step) []string {
	var names []string
	for _, s := range steps {
		if s.Parallel != nil {
			names = append(names, stepNames(s.Parallel)...)
		} else if s.Name != "" {
			names = append(names, s.Name)
		}
	}
	return names
}

// step checks one step, or a parallel group when inGroup is false.
func (c pipelines) step(y yamlStep, service string, sc *scope, inGroup bool) *Step {
	switch {
	case !y.At.found():
		return nil // not a mapping: reported
	case y.Parallel != nil && inGroup:
		c.addf(y.At, "parallel groups do not nest")
		return nil
	case y.Parallel != nil:
		g := &Step{Line: y.At.line(), Parallel: []*Step{}}
		for _, ys := range y.Parallel.V {
			if s := c.step(ys, service, sc, true); s != nil {
				g.Parallel = append(g.Parallel, s)
			}
		}
		if len(y.Parallel.V) == 0 && (!y.Parallel.Set || y.Parallel.OK) {
			c.addf(y.At.under("parallel"), "lists no steps")
		}
		return g
	}
	name := strings.ToLower(y.Action.V)
	if y.As.Set {
		name = y.As.V
	}
	c.stepName(name, y.At, sc)
	s := c.call(y.yamlCall, service, sc)
	s.Name = name
	if y.Undo.Set && y.Undo.V.At.found() {
		// The undo may refer to the step's own result too.
		inner := &scope{item: sc.item, defined: sc.defined, earlier: map[string]bool{name: true}}
		for k := range sc.earlier {
			inner.earlier[k] = true
		}
		s.Undo = c.call(yamlCall(y.Undo.V), s.Service, inner)
		s.Undo.Name = name + ".undo"
	}
	return s
}

// call checks the action of a step or an undo, its service (service when
// it names none) and its id and body.
func (c pipelines) call(y yamlCall, service string, sc *scope) *Step {
	s := &Step{Action: y.Action.V, Service: service, Line: y.At.line()}
	switch {
	case !y.Action.Set:
		c.addf(y.At, "action is required")
	case s.Action != "" && !isAction(s.Action):
		c.addf(y.Action.at, "action %q is not UPPER_SNAKE_CASE", s.Action)
	}
	if y.Service.Set {
		s.Service = c.serviceRef(y.Service)
	}
	if y.ID.OK && y.ID.V != "" {
		s.ID = &Template{src: string(y.ID.V), node: c.compile(string(y.ID.V), y.ID.at, sc)}
	}
	if y.Body.Set {
		s.Body = &Template{}
		s.Body.src, s.Body.node = c.value(y.Body.V, sc)
	}
	return s
}

// stepName checks a step's name and records it in the scope.
func (c pipelines) stepName(name string, a at, sc *scope) {
	switch first := sc.defined[name]; {
	case name == "":
	case !isRefPart(name):
		c.addf(a, "step name %q must be letters, digits, \"-\" and \"_\"", name)
	case name == "path" || name == "body" || name == "caller":
		c.addf(a, "step name %q is reserved; set as", name)
	case first != 0:
		c.addf(a, "step name %q is used twice (first at line %d); set as", name, first)
	default:
		sc.defined[name] = a.line()
	}
}

// compile compiles one string of an id or a body, checking its references
// against the step's scope.
func (c pipelines) compile(s string, a at, sc *scope) tnode {
	n, refs, problems := parseString(s)
	for _, p := range problems {
		c.addf(a, "%s", p)
	}
	for _, r := range refs {
		c.ref(r, a, sc)
	}
	return n
}

// ref checks one reference against the step's scope.
func (c pipelines) ref(r *reference, a at, sc *scope) {
	switch r.root {
	case "path":
		if len(r.fields) != 1 || r.fields[0] != "id" {
			c.addf(a, "reference ${%s}: the path offers only ${path.id}", r)
		} else if !sc.item {
			c.addf(a, "reference ${path.id}: a collection route has no id")
		}
	case "body":
	case "caller":
		if len(r.fields) != 1 || (r.fields[0] != "subject" && r.fields[0] != "roles") {
			c.addf(a, "reference ${%s}: the caller offers ${caller.subject} and ${caller.roles}", r)
		}
	default:
		switch {
		case sc.earlier[r.root]:
		case sc.defined[r.root] != 0:
			c.addf(a, "reference ${%s}: step %q does not finish before this step starts", r, r.root)
		default:
			c.addf(a, "reference ${%s}: no earlier step named %q", r, r.root)
		}
	}
}

// value decodes a body to the types encoding/json produces and takes,
// except that integers stay exact: map[string]any, []any, string, int64
// (every YAML integer), float64 (every other number; never NaN or
// infinite), bool and nil. Timestamps stay strings. It returns the value
// and its template, in which every string that is a value (not a key) is
// compiled.
func (c pipelines) value(n *yaml.Node, sc *scope) (any, tnode) {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		src, obj := map[string]any{}, object{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			src[k], obj[k] = c.value(n.Content[i+1], sc)
		}
		return src, literalOr(src, obj, maps.Values(obj))
	case yaml.SequenceNode:
		src, l := make([]any, len(n.Content)), make(list, len(n.Content))
		for i, v := range n.Content {
			src[i], l[i] = c.value(v, sc)
		}
		return src, literalOr(src, l, slices.Values(l))
	case yaml.ScalarNode:
		v := c.scalar(n)
		if s, ok := v.(string); ok {
			return s, c.compile(s, at{n: n}, sc)
		}
		return v, literal{v}
	}
	return nil, literal{}
}

// literalOr is the template of a mapping or a sequence: literal{src} when
// every part of it is a literal (nothing in it to fill in), t otherwise.
func literalOr(src any, t tnode, parts iter.Seq[tnode]) tnode {
	for p := range parts {
		if _, lit := p.(literal); !lit {
			return t
		}
	}
	return literal{src}
}

// scalar decodes one scalar of a body; nil after reporting a problem.
func (c pipelines) scalar(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err == nil {
			return b
		}
		c.addf(at{n: n}, "expected true or false, got %q", n.Value)
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return i
		}
		c.addf(at{n: n}, "integer %s does not fit in 64 bits", n.Value)
	case "!!float":
		var f float64
		if err := n.Decode(&f); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
		c.addf(at{n: n}, "number %s has no JSON form", n.Value)
	case "!!str", "!!timestamp":
		return n.Value
	default:
		c.addf(at{n: n}, "unsupported YAML tag %s", n.Tag)
	}
	return nil
}
