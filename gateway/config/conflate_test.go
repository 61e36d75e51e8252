package config_test

import (
	"strings"
	"testing"

	"github.com/streamgate/streamgate/gateway/config"
)

// A resource's conflate: false reaches Resource.NoConflate; absent or
// true, its topics conflate; anything but a boolean is refused where it
// stands.
func TestResourceConflate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, line string
		keep       bool
		want       string // an error
	}{
		{"default", "      orders: orders\n", false, ""},
		{"true", "      orders: {service: orders, conflate: true}\n", false, ""},
		{"false", "      orders: {service: orders, conflate: false}\n", true, ""},
		{"not a boolean", "      orders: {service: orders, conflate: sometimes}\n", false, "versions.v1.resources.orders.conflate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse("gateway.yaml", []byte(base+tt.line), nil)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), "gateway.yaml:7: "+tt.want) {
					t.Fatalf("error %v, want one at %s", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Versions["v1"].Resources["orders"].NoConflate; got != tt.keep {
				t.Fatalf("NoConflate %v, want %v", got, tt.keep)
			}
		})
	}
}
