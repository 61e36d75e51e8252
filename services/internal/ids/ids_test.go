package ids_test

import (
	"regexp"
	"testing"

	"github.com/streamgate/streamgate/services/internal/ids"
)

func TestNew(t *testing.T) {
	t.Parallel()
	shape := regexp.MustCompile(`^usr_[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		id := ids.New("usr_")
		if !shape.MatchString(id) {
			t.Fatalf("New = %q, want usr_ and 12 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("New repeated %q", id)
		}
		seen[id] = true
	}
}
