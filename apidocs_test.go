package streamgate_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/streamgate/streamgate"
)

// TestGatewayOpenAPIIsACopy: the embedded document is valid JSON and no
// caller can change what the next one reads.
func TestGatewayOpenAPIIsACopy(t *testing.T) {
	doc, err := streamgate.GatewayOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(doc) || len(doc) == 0 {
		t.Fatal("the embedded OpenAPI document is not JSON")
	}
	doc[0] = 'x'
	if again, _ := streamgate.GatewayOpenAPI(); again[0] == 'x' {
		t.Fatal("a caller changed the embedded document")
	}
}

// The gateway's own API document is OpenAPI 3 with a real version, and
// valid.
func TestGatewayOpenAPIIsOpenAPI3(t *testing.T) {
	doc, err := streamgate.GatewayOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var head struct {
		OpenAPI string `json:"openapi"`
		Swagger string `json:"swagger"`
		Info    struct{ Version string }
	}
	if err := json.Unmarshal(doc, &head); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(head.OpenAPI, "3.") || head.Swagger != "" || head.Info.Version != "v1" {
		t.Fatalf("openapi %q, swagger %q, version %q", head.OpenAPI, head.Swagger, head.Info.Version)
	}
	loaded, err := openapi3.NewLoader().LoadFromData(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := loaded.Validate(context.Background()); err != nil {
		t.Fatalf("invalid OpenAPI 3: %v", err)
	}
	if loaded.Paths.Find("/gateway/v1/invoke") == nil {
		t.Fatal("no /gateway/v1/invoke")
	}
}
