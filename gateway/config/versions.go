package config

import (
	"maps"
	"slices"
	"strings"
)

// versions checks the API versions, then fills each version that extends
// another with deep copies of the resources it does not define itself.
func (l *loader) versions(es entries[yamlVersion]) map[string]*Version {
	out := map[string]*Version{}
	rt := routing{l.problems, l.cfg.Services, l.cfg.HTTP.DefaultTimeout}
	extends := map[string]val[string]{} // version name → its extends value
	var order []string                  // version names in document order
	for _, e := range es {
		if !isSegment(e.Key) {
			l.addf(e.at, "version name must be %s, such as v1 or v2beta", segmentRule)
		}
		ver := &Version{Name: e.Key, Resources: map[string]*Resource{}, Line: e.line()}
		out[ver.Name] = ver
		order = append(order, ver.Name)
		extends[ver.Name] = e.V.Extends
		for _, r := range e.V.Resources {
			ver.Resources[r.Key] = rt.resource(r)
		}
	}

	bases := map[string]string{} // version name → the version it extends
	for _, name := range order {
		switch e := extends[name]; {
		case !e.Set || !e.OK:
		case out[e.V] == nil:
			l.addf(e.at, "unknown version %q", e.V)
		default:
			bases[name] = e.V
		}
	}
	for _, name := range order {
		chain := []string{name}
		for b := bases[name]; b != "" && len(chain) <= len(order); b = bases[b] {
			chain = append(chain, b)
			if b == name {
				l.addf(extends[name].at, "extends cycle: %s", strings.Join(chain, " → "))
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
