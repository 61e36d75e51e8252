// Package streamgate holds what the binaries embed from the repository
// root: the OpenAPI document that buf generates for the gateway's gRPC API.
package streamgate

import _ "embed"

// GatewayOpenAPI is the generated OpenAPI (Swagger 2.0) document of
// GatewayService's HTTP bindings. Do not modify it.
//
//go:embed gen/openapi/streamgate/gateway/v1/gateway.swagger.json
var GatewayOpenAPI []byte
