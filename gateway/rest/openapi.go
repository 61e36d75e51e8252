package rest

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/status"
)

// serveOpenAPI serves an OpenAPI 3 document for one version, built from
// the route table and the services' Describe catalogues. It lists every
// route, so any authenticated caller may read it, not anonymous ones.
func serveOpenAPI(w http.ResponseWriter, r *http.Request, t *invoke.Table, in *invoke.Invocation) {
	version := in.Path.Version()
	if _, err := t.Authorize(in.Authorization, in.APIKey, config.Access{}); err != nil {
		WriteError(w, err)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", http.MethodGet)
		WriteEnvelope(w, invoke.StatusMethodNotAllowed, nil, socket.Errorf(socket.CodeNotSupported, "only GET serves the OpenAPI document"))
		return
	}
	cfg := t.Config()
	v := cfg.Versions[version]
	if v == nil {
		WriteError(w, socket.Errorf(socket.CodeNotFound, "unknown API version %q", version).
			WithDetails(map[string]any{"version": version, "versions": invoke.SortedKeys(cfg.Versions)}))
		return
	}
	b, err := json.MarshalIndent(openAPI(v, t.Catalogue(r.Context(), v)), "", "  ")
	if err != nil {
		WriteError(w, socket.Errorf(socket.CodeInternal, "internal error"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// openAPI builds the document as plain maps: it is small and read by
// machines; a schema library would add more than it saves.
func openAPI(v *config.Version, cats map[string]map[string]caller.ActionInfo) map[string]any {
	return map[string]any{
		"openapi": "3.0.3",
		"info":    map[string]any{"title": "streamgate API " + v.Name, "version": v.Name},
		"paths":   openAPIPaths(v, cats),
		"security": []any{
			map[string]any{"bearer": []any{}},
			map[string]any{"apiKey": []any{}},
		},
		"components": openAPIComponents(),
	}
}

// openAPIPaths describes every route of a version, by path template and
// method.
func openAPIPaths(v *config.Version, cats map[string]map[string]caller.ActionInfo) map[string]map[string]any {
	paths := map[string]map[string]any{}
	for _, res := range v.Resources {
		for _, rt := range res.Routes {
			path := invoke.RouteTemplate(v.Name, res.Name, rt)
			if paths[path] == nil {
				paths[path] = map[string]any{}
			}
			paths[path][strings.ToLower(rt.Method)] = operation(res.Name, rt, path, cats)
		}
	}
	return paths
}

// operation describes one route: its answers, parameters, body and who
// may call it.
func operation(resource string, rt *config.Route, path string, cats map[string]map[string]caller.ActionInfo) map[string]any {
	success := map[string]any{"$ref": "#/components/schemas/Envelope"}
	if rt.List {
		success = map[string]any{"$ref": "#/components/schemas/PageEnvelope"}
	}
	errResp := map[string]any{"description": "The standard error envelope; the status follows the error code and, for a payment its provider refused, the reason (402).",
		"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/ErrorEnvelope"}}}}
	op := map[string]any{
		"operationId": strings.ToLower(rt.Method) + "_" + strings.NewReplacer("/", "_", "{", "", "}", "").Replace(strings.TrimPrefix(path, "/")),
		"tags":        []string{resource},
		"summary":     summary(rt),
		"responses": map[string]any{
			successStatus(rt): map[string]any{"description": "Success.", "content": map[string]any{"application/json": map[string]any{"schema": success}}},
			"default":         errResp,
		},
	}
	if doc := actionDoc(rt, cats); doc != "" {
		op["description"] = doc
	}
	if params := parameters(rt, path); params != nil {
		op["parameters"] = params
	}
	if rt.Method == http.MethodPost || rt.Method == http.MethodPut || rt.Method == http.MethodPatch {
		op["requestBody"] = map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}
	}
	if rt.Access.Anonymous {
		op["security"] = []any{}
	}
	if len(rt.Access.Roles) > 0 {
		op["x-streamgate-roles"] = rt.Access.Roles
	}
	return op
}

// parameters are a route's path and query parameters: the item's id, a
// list's page size and token.
func parameters(rt *config.Route, path string) []any {
	var params []any
	if strings.Contains(path, "{id}") {
		params = append(params, map[string]any{"name": "id", "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
	}
	if rt.List {
		params = append(params,
			map[string]any{"name": "page_size", "in": "query", "description": "How many items a page holds at most (the service's default when absent or 0).", "schema": map[string]any{"type": "integer", "minimum": 0}},
			map[string]any{"name": "page_token", "in": "query", "description": "The previous page's next_page_token, for the page after it; absent for the first page.", "schema": map[string]any{"type": "string"}},
		)
	}
	return params
}

// openAPIComponents are the security schemes and the envelopes' schemas.
func openAPIComponents() map[string]any {
	return map[string]any{
		"securitySchemes": map[string]any{
			"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "A JWT or an API key."},
			"apiKey": map[string]any{"type": "apiKey", "in": "header", "name": HeaderAPIKey},
		},
		"schemas": map[string]any{
			"Envelope": map[string]any{"type": "object", "required": []string{"ok"}, "properties": map[string]any{
				"ok": map[string]any{"type": "boolean"}, "result": map[string]any{}, "error": map[string]any{"$ref": "#/components/schemas/Error"}}},
			"PageEnvelope": map[string]any{"type": "object", "required": []string{"ok"}, "description": "A list's answer: one page of items.", "properties": map[string]any{
				"ok": map[string]any{"type": "boolean"},
				"result": map[string]any{"type": "object", "properties": map[string]any{
					"items":           map[string]any{"type": "array", "items": map[string]any{}},
					"next_page_token": map[string]any{"type": "string", "description": "Send it as page_token for the next page; empty or absent on the last page."},
				}},
				"error": map[string]any{"$ref": "#/components/schemas/Error"}}},
			"ErrorEnvelope": map[string]any{"type": "object", "required": []string{"ok", "error"}, "properties": map[string]any{
				"ok": map[string]any{"type": "boolean", "enum": []bool{false}}, "error": map[string]any{"$ref": "#/components/schemas/Error"}}},
			"Error": map[string]any{"type": "object", "required": []string{"code", "message"}, "properties": map[string]any{
				"code":    map[string]any{"type": "string", "enum": errorCodes()},
				"message": map[string]any{"type": "string"},
				"details": map[string]any{"type": "object"},
			}},
		},
	}
}

// successStatus is a route's success status: 201 for creates.
func successStatus(rt *config.Route) string {
	if rt.Create {
		return "201"
	}
	return "200"
}

// summary names what a route runs: its action, or a pipeline's steps.
func summary(rt *config.Route) string {
	if len(rt.Pipeline) == 0 {
		return rt.Service + " " + rt.Action
	}
	var steps []string
	for _, st := range rt.Pipeline {
		if len(st.Parallel) == 0 {
			steps = append(steps, st.Action)
			continue
		}
		var group []string
		for _, p := range st.Parallel {
			group = append(group, p.Action)
		}
		steps = append(steps, "("+strings.Join(group, " ‖ ")+")")
	}
	return "pipeline: " + strings.Join(steps, " → ")
}

// actionDoc is a single action's doc from its service's catalogue.
func actionDoc(rt *config.Route, cats map[string]map[string]caller.ActionInfo) string {
	if len(rt.Pipeline) == 0 {
		return cats[rt.Service][rt.Action].Doc
	}
	return ""
}

// errorCodes are the error codes an envelope may carry.
func errorCodes() []string {
	codes := status.Codes()
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = string(c)
	}
	return out
}
