// Package bench compares streamgate with the systems it replaces, each
// started as its own processes on loopback and loaded the same way:
// a direct single-process handler, grpc-gateway → unary gRPC,
// httputil.ReverseProxy → HTTP/JSON, and the streamgate gateway in front
// of the users service with its cache off, over NATS, and with its cache
// on. All serve GET /v1/users/{id} over the same users, with API-key
// auth; CPU per request of each system's processes is the headline.
//
//	load, servers := bench.SplitCPUs()
//	res, err := bench.Compare(ctx, bench.Options{
//		Command: []string{exe, "bench", "serve"}, LoadCommand: []string{exe, "bench", "load"},
//		LoadCPUs: load, ServerCPUs: servers, Rounds: 2, Connections: 64, Duration: 8 * time.Second,
//	})
//	res.WriteMarkdown(os.Stdout)
//
// The servers are the same binary started again: Serve runs one of them
// (`streamgate bench serve KIND`); so is the load generator (Load,
// `streamgate bench load`), unless wrk loads the systems (Options.WRK).
package bench

import (
	"fmt"
	"strconv"
	"time"
)

// User is one account of the comparison, as every system answers it.
type User struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	Status    string `json:"status"`
	CreatedAt string `json:"created_at"`
}

// epoch is when the first user was created; user i a minute later per i.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Users returns users "1" to "n", the same every time.
func Users(n int) []User {
	out := make([]User, n)
	for i := range out {
		id := i + 1
		out[i] = User{
			ID:        strconv.Itoa(id),
			Name:      fmt.Sprintf("User %d", id),
			Email:     fmt.Sprintf("user%d@example.com", id),
			Status:    "active",
			CreatedAt: epoch.Add(time.Duration(id) * time.Minute).Format(time.RFC3339),
		}
	}
	return out
}

// lookup finds the user with id among users "1" to "len(users)".
func lookup(users []User, id string) (User, bool) {
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 || n > len(users) || strconv.Itoa(n) != id {
		return User{}, false
	}
	return users[n-1], true
}
