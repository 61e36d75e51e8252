package users_test

import (
	"strings"
	"testing"

	"github.com/streamgate/streamgate/services/internal/sqldb/sqltest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/services/users"
	"github.com/streamgate/streamgate/status"
)

// TestStorageErrorsStayInside: when the database fails under a service,
// callers get INTERNAL "internal error", never the driver's text.
func TestStorageErrorsStayInside(t *testing.T) {
	t.Parallel()
	db := sqltest.SQLite(t)
	c := serve(t, sqlStore(t, db))
	admin := sockettest.As(t, "v1", "root", "admin")
	if _, err := c.Request(admin, "CREATE_USER", "", users.CreateInput{ID: "ann", Name: "Ann", Email: "ann@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil { // every query now fails in the driver
		t.Fatal(err)
	}
	for _, action := range []string{"GET_USER", "LIST_USERS", "DELETE_USER"} {
		_, err := c.Request(admin, action, "ann", nil)
		e := status.AsError(err)
		if e == nil || e.Code != socket.CodeInternal {
			t.Fatalf("%s on a closed database: %v, want INTERNAL", action, err)
		}
		if low := strings.ToLower(e.Message); strings.Contains(low, "sql") || strings.Contains(low, "database") || strings.Contains(low, "closed") {
			t.Errorf("%s's answer carries the driver's error: %q", action, e.Message)
		}
	}
}
