package config

import (
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// versions reads the API versions, then fills each version that extends
// another with deep copies of the resources it does not define itself.
func (l *loader) versions(n *yaml.Node, path string) map[string]*Version {
	out := map[string]*Version{}
	extends := map[string]*yaml.Node{} // version name → its extends value
	var order []string                 // version names in document order
	l.pairs(n, path, func(k, v *yaml.Node, p string) {
		if !isSegment(k.Value) {
			l.addf(k.Line, p, "version name must be %s, such as v1 or v2beta", segmentRule)
		}
		ver := &Version{Name: k.Value, Resources: map[string]*Resource{}, Line: k.Line}
		out[ver.Name] = ver
		order = append(order, ver.Name)
		f := l.fields(v, p, "extends", "resources")
		if e := f["extends"]; e != nil {
			extends[ver.Name] = e
		}
		l.pairs(f["resources"], join(p, "resources"), func(rk, rv *yaml.Node, rp string) {
			ver.Resources[rk.Value] = l.resource(rk, rv, rp)
		})
	})

	bases := map[string]string{} // version name → the version it extends
	for _, name := range order {
		e := extends[name]
		if e == nil {
			continue
		}
		p := join(join(path, name), "extends")
		base, ok := l.name(e, p)
		switch {
		case !ok:
		case out[base] == nil:
			l.addf(deref(e).Line, p, "unknown version %q", base)
		default:
			bases[name] = base
		}
	}
	for _, name := range order {
		chain := []string{name}
		for b := bases[name]; b != "" && len(chain) <= len(order); b = bases[b] {
			chain = append(chain, b)
			if b == name {
				l.addf(deref(extends[name]).Line, join(join(path, name), "extends"), "extends cycle: %s", strings.Join(chain, " → "))
				break
			}
		}
	}

	done := map[string]bool{}
	var inherit func(name string)
	inherit = func(name string) {
		if done[name] {
			return
		}
		done[name] = true // before recursing, so that a cycle (reported above) ends
		base := bases[name]
		if base == "" {
			return
		}
		inherit(base)
		own := out[name].Resources
		for _, rname := range slices.Sorted(maps.Keys(out[base].Resources)) {
			if own[rname] == nil {
				own[rname] = copyResource(out[base].Resources[rname])
			}
		}
	}
	for _, name := range order {
		inherit(name)
	}
	return out
}

// copyResource copies a resource deeply enough that changing the copy's
// routes, roles or pipelines leaves the original as it was (templates are
// immutable and shared).
func copyResource(r *Resource) *Resource {
	c := *r
	c.Routes = make([]*Route, len(r.Routes))
	for i, rt := range r.Routes {
		c.Routes[i] = copyRoute(rt)
	}
	return &c
}

func copyRoute(rt *Route) *Route {
	c := *rt
	c.Access.Roles = slices.Clone(rt.Access.Roles)
	c.Pipeline = copySteps(rt.Pipeline)
	return &c
}

func copySteps(steps []*Step) []*Step {
	if steps == nil {
		return nil
	}
	out := make([]*Step, len(steps))
	for i, s := range steps {
		c := *s
		c.Parallel = copySteps(s.Parallel)
		out[i] = &c
	}
	return out
}
