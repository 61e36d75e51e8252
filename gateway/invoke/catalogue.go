package invoke

import (
	"context"
	"time"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// Catalogue returns the actions of the services a version uses, asked
// once per table and version; a service that does not answer within 2s
// is left out (its routes have no descriptions).
func (t *Table) Catalogue(ctx context.Context, v *config.Version) map[string]map[string]caller.ActionInfo {
	if c, ok := t.catalogues.Load(v.Name); ok {
		return c.(map[string]map[string]caller.ActionInfo)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out := map[string]map[string]caller.ActionInfo{}
	for _, res := range v.Resources {
		for _, rt := range res.Routes {
			for _, name := range routeServices(rt) {
				if _, done := out[name]; done || t.clients[name] == nil {
					continue
				}
				out[name] = map[string]caller.ActionInfo{}
				if actions, err := t.clients[name].Describe(ctx); err == nil {
					out[name] = actions
				}
			}
		}
	}
	t.catalogues.Store(v.Name, out)
	return out
}

func routeServices(rt *config.Route) []string {
	names := []string{rt.Service}
	for _, st := range rt.Pipeline {
		names = append(names, st.Service)
		for _, p := range st.Parallel {
			names = append(names, p.Service)
		}
	}
	return names
}
