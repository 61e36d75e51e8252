package streamgate_test

import (
	"encoding/json"
	"testing"

	"github.com/streamgate/streamgate"
)

// TestGatewayOpenAPIIsACopy: the embedded document is valid JSON and no
// caller can change what the next one reads.
func TestGatewayOpenAPIIsACopy(t *testing.T) {
	doc := streamgate.GatewayOpenAPI()
	if !json.Valid(doc) || len(doc) == 0 {
		t.Fatal("the embedded OpenAPI document is not JSON")
	}
	doc[0] = 'x'
	if again := streamgate.GatewayOpenAPI(); again[0] == 'x' {
		t.Fatal("a caller changed the embedded document")
	}
}
