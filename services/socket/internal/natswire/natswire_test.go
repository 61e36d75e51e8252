package natswire_test

import (
	"testing"

	"github.com/streamgate/streamgate/services/socket/internal/natswire"
)

// TestCheckService: names that cannot be one subject token, and the name
// whose subjects are the events', are refused.
func TestCheckService(t *testing.T) {
	for name, ok := range map[string]bool{"orders": true, "user-profiles_2": true, "": false, "a.b": false, "a*": false, "a b": false, "events": false} {
		if err := natswire.CheckService(name); (err == nil) != ok {
			t.Errorf("CheckService(%q) = %v; want ok %v", name, err, ok)
		}
	}
}
