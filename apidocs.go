// Package streamgate holds what the binaries embed from the repository
// root: the OpenAPI document that buf generates for the gateway's gRPC API.
package streamgate

import _ "embed"

//go:embed gen/openapi/streamgate/gateway/v1/gateway.swagger.json
var gatewayOpenAPI []byte

// GatewayOpenAPI returns the generated OpenAPI (Swagger 2.0) document of
// GatewayService's HTTP bindings: a copy, so no caller can change what
// the next one gets.
func GatewayOpenAPI() []byte {
	return append([]byte(nil), gatewayOpenAPI...)
}
