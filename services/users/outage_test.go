package users_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/streamgate/streamgate/services/internal/sqldb"
	"github.com/streamgate/streamgate/services/internal/sqldb/sqltest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/services/users"
	"github.com/streamgate/streamgate/status"
)

// forwarder is a loopback TCP forwarder to a database server that can be
// taken down: its connections closed and its port no longer listening.
type forwarder struct {
	lis    net.Listener
	target string
	mu     sync.Mutex // guards conns
	conns  []net.Conn
	wg     sync.WaitGroup
}

func forward(t *testing.T, target string) *forwarder {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{lis: lis, target: target}
	f.wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, s)
			f.mu.Unlock()
			f.wg.Go(func() { _, _ = io.Copy(s, c); _ = s.Close() })
			f.wg.Go(func() { _, _ = io.Copy(c, s); _ = c.Close() })
		}
	})
	t.Cleanup(f.down)
	return f
}

// down stops listening and closes every connection.
func (f *forwarder) down() {
	_ = f.lis.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// TestDatabaseOutageIsUnavailable: when the database cannot be reached,
// callers get UNAVAILABLE (503 with Retry-After at the gateway: try again
// later), not INTERNAL, and no internal cause. Defect (issue 16): 500.
func TestDatabaseOutageIsUnavailable(t *testing.T) {
	t.Parallel()
	dsn, err := url.Parse(sqltest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	fw := forward(t, dsn.Host)
	dsn.Host = fw.lis.Addr().String()
	db, err := sqldb.Open(context.Background(), sqldb.Postgres, dsn.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	c := serve(t, sqlStore(t, db))
	admin := sockettest.As(t, "v1", "root", "admin")
	if _, err := c.Request(admin, "CREATE_USER", "", users.CreateInput{ID: "ann", Name: "Ann", Email: "ann@example.com"}); err != nil {
		t.Fatal(err)
	}
	fw.down()
	for _, action := range []string{"GET_USER", "LIST_USERS", "UPDATE_USER", "DELETE_USER"} {
		var body any
		if action == "UPDATE_USER" {
			body = users.Patch{Name: ptr("Anne")}
		}
		_, err := c.Request(admin, action, "ann", body)
		e := status.AsError(err)
		if e == nil || e.Code != socket.CodeUnavailable {
			t.Fatalf("%s with the database unreachable: %v, want UNAVAILABLE", action, err)
		}
		low := strings.ToLower(e.Message)
		for _, leak := range []string{"127.0.0.1", "dial", "sql", "connection refused", "tcp"} {
			if strings.Contains(low, leak) {
				t.Errorf("%s's answer carries an internal cause (%q): %q", action, leak, e.Message)
			}
		}
	}
}
