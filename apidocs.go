// Package streamgate holds what the binaries embed from the repository
// root: the OpenAPI document of the gateway's gRPC API.
package streamgate

import (
	_ "embed"
	"encoding/json"
	"sync"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
)

// gatewaySwagger is what buf generates (protoc-gen-openapiv2 writes
// Swagger 2.0); GatewayOpenAPI serves it converted to OpenAPI 3.
//
//go:embed gen/openapi/streamgate/gateway/v1/gateway.swagger.json
var gatewaySwagger []byte

// GatewayAPIVersion is the version GatewayOpenAPI's document states: the
// version of the streamgate.gateway.v1 package it describes.
const GatewayAPIVersion = "v1"

// gatewayOpenAPI converts the generated document once.
var gatewayOpenAPI = sync.OnceValues(func() ([]byte, error) {
	var doc2 openapi2.T
	if err := json.Unmarshal(gatewaySwagger, &doc2); err != nil {
		return nil, err
	}
	doc3, err := openapi2conv.ToV3(&doc2)
	if err != nil {
		return nil, err
	}
	doc3.Info.Title = "streamgate GatewayService"
	doc3.Info.Version = GatewayAPIVersion
	return json.MarshalIndent(doc3, "", "  ")
})

// GatewayOpenAPI returns the OpenAPI 3 document of GatewayService's HTTP
// bindings, converted from the Swagger 2.0 document buf generates: a
// copy, so no caller can change what the next one gets. The error says
// the embedded document does not convert (TestGatewayOpenAPIIsOpenAPI3
// rules that out).
func GatewayOpenAPI() ([]byte, error) {
	doc, err := gatewayOpenAPI()
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), doc...), nil
}
