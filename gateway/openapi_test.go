package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// A list route's document says how to page: page_size and page_token in,
// next_page_token out.
func TestOpenAPIDocumentsPaging(t *testing.T) {
	t.Parallel()
	_, svcs := newSystem(t)
	_, ts := startGateway(t, testYAML, svcs)
	req, _ := http.NewRequest("GET", ts.URL+"/v1/openapi.json", nil)
	req.Header.Set("X-API-Key", aliceKey)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name, In, Description string
			} `json:"parameters"`
			Responses map[string]struct {
				Content map[string]struct {
					Schema map[string]any `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	list := doc.Paths["/v1/users"]["get"]
	params := map[string]string{}
	for _, p := range list.Parameters {
		if p.In == "query" {
			params[p.Name] = p.Description
		}
	}
	if params["page_token"] == "" || params["page_size"] == "" {
		t.Fatalf("list parameters undocumented: %+v", list.Parameters)
	}
	ref, _ := list.Responses["200"].Content["application/json"].Schema["$ref"].(string)
	if ref != "#/components/schemas/PageEnvelope" {
		t.Fatalf("list answer schema %q", ref)
	}
	var page struct {
		Properties map[string]struct {
			Properties map[string]struct {
				Type        string `json:"type"`
				Description string `json:"description"`
			} `json:"properties"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(doc.Components.Schemas["PageEnvelope"], &page); err != nil {
		t.Fatal(err)
	}
	next := page.Properties["result"].Properties["next_page_token"]
	if next.Type != "string" || next.Description == "" || page.Properties["result"].Properties["items"].Type != "array" {
		t.Fatalf("PageEnvelope: %s", doc.Components.Schemas["PageEnvelope"])
	}
	if ref, _ := doc.Paths["/v1/users/{id}"]["get"].Responses["200"].Content["application/json"].Schema["$ref"].(string); ref != "#/components/schemas/Envelope" {
		t.Fatalf("a get's answer schema %q", ref)
	}
}
