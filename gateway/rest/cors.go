package rest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/streamgate/streamgate/gateway/config"
)

// cors applies the CORS policy; it reports whether the request was a
// preflight, already answered.
func cors(policy config.CORS, w http.ResponseWriter, r *http.Request) bool {
	origin := get(r.Header, headerOrigin)
	if origin == "" || len(policy.AllowedOrigins) == 0 {
		return false
	}
	allowed := slices.Contains(policy.AllowedOrigins, "*") || slices.Contains(policy.AllowedOrigins, origin)
	if !allowed {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if slices.Contains(policy.AllowedOrigins, "*") && !policy.AllowCredentials {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if policy.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		if len(policy.ExposedHeaders) > 0 {
			h.Set("Access-Control-Expose-Headers", strings.Join(policy.ExposedHeaders, ", "))
		}
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
	h.Set("Access-Control-Allow-Headers", strings.Join(policy.AllowedHeaders, ", "))
	if policy.MaxAge > 0 {
		h.Set("Access-Control-Max-Age", fmt.Sprint(int(policy.MaxAge.Seconds())))
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}
