package config

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// scope is what the references of a pipeline step may name.
type scope struct {
	item    bool            // the route has an id, so ${path.id} is defined
	defined map[string]int  // every step name so far → its line
	earlier map[string]bool // the steps that finish before the current one starts
}

// pipeline reads a route's steps. service is the default for steps that
// name none; item says whether the route's path has an id.
func (l *loader) pipeline(n *yaml.Node, path, service string, item bool) []*Step {
	if n = deref(n); n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		l.addf(n.Line, path, "expected a list of steps, got %s", describe(n))
		return nil
	}
	sc := &scope{item: item, defined: map[string]int{}, earlier: map[string]bool{}}
	var steps []*Step
	l.items(n, path, func(_ int, v *yaml.Node, p string) {
		s := l.step(v, p, service, sc, false)
		if s == nil {
			return
		}
		steps = append(steps, s)
		for _, name := range stepNames([]*Step{s}) {
			sc.earlier[name] = true
		}
	})
	return steps
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

// hasKey reports whether a mapping node has a key.
func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i < len(n.Content); i += 2 {
		if deref(n.Content[i]).Value == key {
			return true
		}
	}
	return false
}

// step reads one step, or a parallel group when the mapping has a
// "parallel" key and inGroup is false.
func (l *loader) step(n *yaml.Node, path, service string, sc *scope, inGroup bool) *Step {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		l.addf(n.Line, path, "expected a step (a mapping), got %s", describe(n))
		return nil
	}
	if hasKey(n, "parallel") {
		if inGroup {
			l.addf(n.Line, path, "parallel groups do not nest")
			return nil
		}
		f := l.fields(n, path, "parallel")
		g := &Step{Line: n.Line, Parallel: []*Step{}}
		l.items(f["parallel"], join(path, "parallel"), func(_ int, v *yaml.Node, p string) {
			if s := l.step(v, p, service, sc, true); s != nil {
				g.Parallel = append(g.Parallel, s)
			}
		})
		if v := deref(f["parallel"]); v == nil || (v.Kind == yaml.SequenceNode && len(v.Content) == 0) {
			l.addf(n.Line, join(path, "parallel"), "lists no steps")
		}
		return g
	}

	f := l.fields(n, path, "as", "service", "action", "id", "body", "undo")
	s := &Step{Service: service, Line: n.Line}
	if v := f["action"]; v != nil {
		if s.Action, _ = l.name(v, join(path, "action")); s.Action != "" && !isAction(s.Action) {
			l.addf(deref(v).Line, join(path, "action"), "action %q is not UPPER_SNAKE_CASE", s.Action)
		}
	} else {
		l.addf(n.Line, path, "action is required")
	}
	s.Name = strings.ToLower(s.Action)
	if v := f["as"]; v != nil {
		s.Name, _ = l.name(v, join(path, "as"))
	}
	l.stepName(s, path, sc)
	if v := f["service"]; v != nil {
		s.Service, _ = l.serviceRef(v, join(path, "service"))
	}
	s.ID, s.Body = l.templates(f["id"], f["body"], path, sc)
	if v := f["undo"]; v != nil {
		s.Undo = l.undo(v, join(path, "undo"), s, sc)
	}
	return s
}

// undo reads a step's compensation: one action (service, action, id,
// body) that may refer to the step's own result as well as earlier ones.
func (l *loader) undo(n *yaml.Node, path string, of *Step, sc *scope) *Step {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		l.addf(n.Line, path, "expected an action (a mapping), got %s", describe(n))
		return nil
	}
	f := l.fields(n, path, "service", "action", "id", "body")
	u := &Step{Service: of.Service, Name: of.Name + ".undo", Line: n.Line}
	inner := &scope{item: sc.item, defined: sc.defined, earlier: map[string]bool{of.Name: true}}
	for k := range sc.earlier {
		inner.earlier[k] = true
	}
	if v := f["action"]; v != nil {
		if u.Action, _ = l.name(v, join(path, "action")); u.Action != "" && !isAction(u.Action) {
			l.addf(deref(v).Line, join(path, "action"), "action %q is not UPPER_SNAKE_CASE", u.Action)
		}
	} else {
		l.addf(n.Line, path, "action is required")
	}
	if v := f["service"]; v != nil {
		u.Service, _ = l.serviceRef(v, join(path, "service"))
	}
	u.ID, u.Body = l.templates(f["id"], f["body"], path, inner)
	return u
}

// stepName checks a step's name and records it in the scope.
func (l *loader) stepName(s *Step, path string, sc *scope) {
	switch first := sc.defined[s.Name]; {
	case s.Name == "":
	case !isRefPart(s.Name):
		l.addf(s.Line, path, "step name %q must be letters, digits, \"-\" and \"_\"", s.Name)
	case s.Name == "path" || s.Name == "body" || s.Name == "caller":
		l.addf(s.Line, path, "step name %q is reserved; set as", s.Name)
	case first != 0:
		l.addf(s.Line, path, "step name %q is used twice (first at line %d); set as", s.Name, first)
	default:
		sc.defined[s.Name] = s.Line
	}
}

// templates compiles a step's id (a string) and body, checking their
// references against the step's scope; nil for each that is absent.
func (l *loader) templates(id, body *yaml.Node, path string, sc *scope) (*Template, *Template) {
	compile := func(s string, line int, path string) tnode {
		n, refs, problems := parseString(s)
		for _, p := range problems {
			l.addf(line, path, "%s", p)
		}
		for _, r := range refs {
			l.ref(r, line, path, sc)
		}
		return n
	}
	var idT, bodyT *Template
	if id != nil {
		if s, ok := l.str(id, join(path, "id")); ok {
			idT = &Template{src: s, node: compile(s, deref(id).Line, join(path, "id"))}
		}
	}
	if body != nil {
		bodyT = &Template{}
		bodyT.src, bodyT.node = l.value(body, join(path, "body"), compile)
	}
	return idT, bodyT
}

// ref checks one reference against the step's scope.
func (l *loader) ref(r *reference, line int, path string, sc *scope) {
	switch r.root {
	case "path":
		if len(r.fields) != 1 || r.fields[0] != "id" {
			l.addf(line, path, "reference ${%s}: the path offers only ${path.id}", r)
		} else if !sc.item {
			l.addf(line, path, "reference ${path.id}: a collection route has no id")
		}
	case "body":
	case "caller":
		if len(r.fields) != 1 || (r.fields[0] != "subject" && r.fields[0] != "roles") {
			l.addf(line, path, "reference ${%s}: the caller offers ${caller.subject} and ${caller.roles}", r)
		}
	default:
		switch {
		case sc.earlier[r.root]:
		case sc.defined[r.root] != 0:
			l.addf(line, path, "reference ${%s}: step %q does not finish before this step starts", r, r.root)
		default:
			l.addf(line, path, "reference ${%s}: no earlier step named %q", r, r.root)
		}
	}
}
