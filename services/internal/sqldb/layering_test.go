package sqldb_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"testing"
)

// TestStoresDoNotImportTheTransport keeps the shop services' storage free
// of the socket package: stores return their own errors and the services
// turn them into answers.
func TestStoresDoNotImportTheTransport(t *testing.T) {
	t.Parallel()
	const transport = "github.com/streamgate/streamgate/services/socket"
	files := []string{
		"users/store.go", "users/sqlstore.go",
		"inventory/store.go", "inventory/sqlstore.go", "inventory/sqlreservations.go",
		"orders/store.go", "orders/sqlstore.go", "orders/state.go",
		"payments/store.go", "payments/sqlstore.go",
	}
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "..", name), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); path == transport {
				t.Errorf("services/%s imports %s", name, transport)
			}
		}
	}
}
