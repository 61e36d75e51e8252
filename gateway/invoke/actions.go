package invoke

import (
	"slices"
	"strings"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/internal/actionroute"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// ActionPath resolves the action form of a request (a WebSocket frame's
// action and resource_id): the method and path of the version's route
// that sends the action, to the item id when one is given.
func (t *Table) ActionPath(version, action, id string) (method string, p Path, err *status.Error) {
	target, ok := actionroute.Find(t.actionRoutes(version), "", action, id != "")
	switch {
	case !ok:
		return "", Path{}, socket.Errorf(socket.CodeNotFound, "API version %s has no route for action %s", version, action).
			WithDetails(map[string]any{"version": version, "action": action})
	case target.Item && id == "":
		return "", Path{}, socket.Errorf(socket.CodeInvalidArgument, "action %s needs a resource_id", action)
	case !target.Item && id != "":
		return "", Path{}, socket.Errorf(socket.CodeInvalidArgument, "action %s takes no resource_id", action)
	case id != "" && !ValidID(id):
		return "", Path{}, socket.Errorf(socket.CodeInvalidArgument, "resource_id %q is not a valid resource id", id)
	}
	return target.Method, Path{version: version, resource: target.Resource, id: id, segment: target.Segment}, nil
}

// actionRoutes lists a version's single-action routes in ListRoutes'
// order (by path, then method), for actionroute.Find; cached per table.
func (t *Table) actionRoutes(version string) []actionroute.Route {
	if r, ok := t.actions.Load(version); ok {
		return r.([]actionroute.Route)
	}
	var out []actionroute.Route
	if v := t.cfg.Versions[version]; v != nil {
		out = versionActionRoutes(v)
	}
	t.actions.Store(version, out)
	return out
}

func versionActionRoutes(v *config.Version) []actionroute.Route {
	var out []actionroute.Route
	for _, res := range v.Resources {
		for _, rt := range res.Routes {
			if len(rt.Pipeline) == 0 {
				out = append(out, actionroute.Route{Method: rt.Method, Path: RouteTemplate(v.Name, res.Name, rt), Service: rt.Service, Action: rt.Action})
			}
		}
	}
	slices.SortFunc(out, func(a, b actionroute.Route) int {
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	})
	return out
}
