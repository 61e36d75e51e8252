package actionroute_test

import (
	"testing"

	"github.com/streamgate/streamgate/internal/actionroute"
)

func TestFind(t *testing.T) {
	routes := []actionroute.Route{
		{Method: "GET", Path: "/v1/users", Service: "users", Action: "LIST_USERS"},
		{Method: "GET", Path: "/v1/users/{id}", Service: "users", Action: "GET_USER"},
		{Method: "PUT", Path: "/v1/users/{id}", Service: "users", Action: "UPDATE_USER"},
		{Method: "PATCH", Path: "/v1/users/{id}", Service: "users", Action: "UPDATE_USER"},
		{Method: "GET", Path: "/v1/users/{id}/check_purchasable", Service: "users", Action: "CHECK_PURCHASABLE"},
		{Method: "POST", Path: "/v1/items/check_available", Service: "inventory", Action: "CHECK_AVAILABLE"},
		{Method: "GET", Path: "/v1/other/{id}", Service: "other", Action: "GET_USER"},
		{Method: "POST", Path: "/v1/orders/{id}/pay"}, // a pipeline: no single action
	}
	tests := []struct {
		name, service, action string
		withID                bool
		want                  actionroute.Target
		ok                    bool
	}{
		{"item CRUD", "", "UPDATE_USER", true, actionroute.Target{Method: "PUT", Resource: "users", Item: true}, true},
		{"collection", "", "LIST_USERS", false, actionroute.Target{Method: "GET", Resource: "users"}, true},
		{"item action", "", "CHECK_PURCHASABLE", true, actionroute.Target{Method: "GET", Resource: "users", Segment: "check_purchasable", Item: true}, true},
		{"collection action", "", "CHECK_AVAILABLE", false, actionroute.Target{Method: "POST", Resource: "items", Segment: "check_available"}, true},
		{"service narrows", "other", "GET_USER", true, actionroute.Target{Method: "GET", Resource: "other", Item: true}, true},
		{"first wins without service", "", "GET_USER", true, actionroute.Target{Method: "GET", Resource: "users", Item: true}, true},
		{"wrong service", "inventory", "GET_USER", true, actionroute.Target{}, false},
		{"unknown", "", "NOPE", false, actionroute.Target{}, false},
		{"pipeline has no action", "", "", false, actionroute.Target{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := actionroute.Find(routes, tt.service, tt.action, tt.withID)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("Find(%q, %q, %v) = %+v, %v; want %+v, %v", tt.service, tt.action, tt.withID, got, ok, tt.want, tt.ok)
			}
		})
	}
}
