package invoke

import (
	"net/http"
	"testing"
)

// TestRESTForm tells paths a REST route may have from longer and shorter
// ones, as ParsePath does.
func TestRESTForm(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/v1/users", true},
		{"/v1/users/1", true},
		{"/v1/users/1/pay", true},
		{"/gateway/v1/invoke", true},
		{"/gateway/v1/versions/v1/routes", false},
		{"/v1", false},
		{"v1/users", false},
		{"", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			if got := RESTForm(tc.path); got != tc.want {
				t.Fatalf("RESTForm(%q) = %v, want %v", tc.path, got, tc.want)
			}
			if _, _, err := ParsePath(http.MethodGet, tc.path); tc.want != (err == nil) {
				t.Fatalf("ParsePath(%q) = %v: disagrees with RESTForm", tc.path, err)
			}
		})
	}
}
