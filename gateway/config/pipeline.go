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

// pipeline checks a route's steps. service is the default for steps that
// name none; item says whether the route's path has an id.
func (l *loader) pipeline(y val[yamlSteps], service string, item bool) []*Step {
	sc := &scope{item: item, defined: map[string]int{}, earlier: map[string]bool{}}
	var steps []*Step
	for _, ys := range y.V {
		s := l.step(ys, service, sc, false)
		if s == nil {
			continue
		}
		steps = append(steps, s)
		for _, name := range stepNames([]*Step{s}) {
			sc.earlier[name] = true
		}
	}
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

// step checks one step, or a parallel group when inGroup is false.
func (l *loader) step(y yamlStep, service string, sc *scope, inGroup bool) *Step {
	switch {
	case y.At.Line == 0:
		return nil // not a mapping: reported
	case y.Parallel != nil && inGroup:
		l.addf(y.At.Line, y.At.Path, "parallel groups do not nest")
		return nil
	case y.Parallel != nil:
		g := &Step{Line: y.At.Line, Parallel: []*Step{}}
		for _, ys := range y.Parallel.V {
			if s := l.step(ys, service, sc, true); s != nil {
				g.Parallel = append(g.Parallel, s)
			}
		}
		if len(y.Parallel.V) == 0 && (!y.Parallel.Set || y.Parallel.OK) {
			l.addf(y.At.Line, join(y.At.Path, "parallel"), "lists no steps")
		}
		return g
	}
	name := strings.ToLower(y.Action.V)
	if y.As.Set {
		name = y.As.V
	}
	l.stepName(name, y.At, sc)
	s := l.call(y.yamlUndo, service, sc)
	s.Name = name
	if y.Undo.Set && y.Undo.V.At.Line != 0 {
		// The undo may refer to the step's own result too.
		inner := &scope{item: sc.item, defined: sc.defined, earlier: map[string]bool{name: true}}
		for k := range sc.earlier {
			inner.earlier[k] = true
		}
		s.Undo = l.call(y.Undo.V, s.Service, inner)
		s.Undo.Name = name + ".undo"
	}
	return s
}

// call checks the action of a step or an undo, its service (service when
// it names none) and its id and body.
func (l *loader) call(y yamlUndo, service string, sc *scope) *Step {
	s := &Step{Action: y.Action.V, Service: service, Line: y.At.Line}
	switch {
	case !y.Action.Set:
		l.addf(y.At.Line, y.At.Path, "action is required")
	case s.Action != "" && !isAction(s.Action):
		l.addf(y.Action.Line, y.Action.Path, "action %q is not UPPER_SNAKE_CASE", s.Action)
	}
	if y.Service.Set {
		s.Service = l.serviceRef(y.Service)
	}
	s.ID, s.Body = l.templates(y.ID, y.Body, sc)
	return s
}

// stepName checks a step's name and records it in the scope.
func (l *loader) stepName(name string, at at, sc *scope) {
	switch first := sc.defined[name]; {
	case name == "":
	case !isRefPart(name):
		l.addf(at.Line, at.Path, "step name %q must be letters, digits, \"-\" and \"_\"", name)
	case name == "path" || name == "body" || name == "caller":
		l.addf(at.Line, at.Path, "step name %q is reserved; set as", name)
	case first != 0:
		l.addf(at.Line, at.Path, "step name %q is used twice (first at line %d); set as", name, first)
	default:
		sc.defined[name] = at.Line
	}
}

// templates compiles a step's id (a string) and body, checking their
// references against the step's scope; nil for each that is absent.
func (l *loader) templates(id val[text], body val[*yaml.Node], sc *scope) (*Template, *Template) {
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
	if id.Set && id.OK && id.V != "" {
		idT = &Template{src: string(id.V), node: compile(string(id.V), id.Line, id.Path)}
	}
	if body.Set {
		bodyT = &Template{}
		bodyT.src, bodyT.node = l.value(body.V, body.Path, compile)
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
