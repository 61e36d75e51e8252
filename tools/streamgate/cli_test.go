package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// everyCommand is every command and subcommand as typed after
// `streamgate`, with the arguments it needs before its flags.
var everyCommand = []struct {
	name string   // as in "streamgate: NAME: …"
	args []string // the command line up to its flags
}{
	{"stack", []string{"stack"}},
	{"token", []string{"token"}},
	{"gateway", []string{"gateway"}},
	{"service", []string{"service"}},
	{"service", []string{"service", "users"}},
	{"call", []string{"call"}},
	{"reconcile", []string{"reconcile"}},
	{"conformance", []string{"conformance"}},
	{"load", []string{"load"}},
	{"bench", []string{"bench"}},
	{"bench compare", []string{"bench", "compare"}},
	{"bench serve", []string{"bench", "serve"}},
	{"bench load", []string{"bench", "load"}},
	{"bench fanout", []string{"bench", "fanout"}},
	{"bench subscribers", []string{"bench", "subscribers"}},
}

// `CMD -h`, `CMD -help`, `CMD --help` and `help CMD` exit 0 and print
// that command's usage, and only its, on stdout.
func TestEveryCommandHelp(t *testing.T) {
	for _, c := range everyCommand {
		forms := [][]string{
			append(append([]string{}, c.args...), "-h"),
			append(append([]string{}, c.args...), "-help"),
			append(append([]string{}, c.args...), "--help"),
			append([]string{"help"}, c.args...),
		}
		for _, args := range forms {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var out, errOut bytes.Buffer
				if status := dispatch(context.Background(), args, &out, &errOut); status != 0 {
					t.Fatalf("status %d, want 0; stderr %s", status, errOut.String())
				}
				if errOut.Len() != 0 {
					t.Fatalf("stderr %q, want nothing", errOut.String())
				}
				help := out.String()
				if !strings.HasPrefix(help, "usage:\n  streamgate "+c.name+" ") {
					t.Fatalf("help does not open with the usage of %s:\n%s", c.name, help)
				}
				for _, line := range strings.Split(help, "\n") {
					if strings.HasPrefix(line, "  streamgate ") && !strings.HasPrefix(line, "  streamgate "+c.name+" ") {
						t.Errorf("another command's usage in %s's help: %s", c.name, line)
					}
				}
				serving := c.name == "stack" || c.name == "gateway" || c.name == "service"
				if strings.Contains(help, "Tracing") != serving {
					t.Errorf("the Tracing note in %s's help: %v, want %v", c.name, !serving, serving)
				}
			})
		}
	}
}

// The whole usage lists every command but the hidden bench serve and
// bench load.
func TestWholeUsage(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		var out, errOut bytes.Buffer
		if status := dispatch(context.Background(), args, &out, &errOut); status != 0 || errOut.Len() != 0 {
			t.Fatalf("%v: status %d, stderr %s", args, status, errOut.String())
		}
		for _, c := range everyCommand {
			hidden := c.name == "bench serve" || c.name == "bench load" || c.name == "bench subscribers"
			if !hidden && c.name != "bench" && !strings.Contains(out.String(), "\n  streamgate "+c.name+" ") {
				t.Errorf("%v: the usage lacks %s", args, c.name)
			}
		}
		for _, hidden := range []string{"streamgate bench serve", "streamgate bench load", "streamgate bench subscribers"} {
			if strings.Contains(out.String(), hidden) {
				t.Errorf("%v: the usage lists the hidden %s", args, hidden)
			}
		}
	}
	var out, errOut bytes.Buffer
	if status := dispatch(context.Background(), nil, &out, &errOut); status != 2 || out.Len() != 0 || !strings.Contains(errOut.String(), "streamgate stack") {
		t.Fatalf("no command: status %d, stdout %q, stderr %q", status, out.String(), errOut.String())
	}
}

// A bad flag is one line on stderr, "streamgate: CMD: …", and exit
// status 2.
func TestEveryCommandRefusesABadFlag(t *testing.T) {
	for _, c := range everyCommand {
		args := append(append([]string{}, c.args...), "-no-such-flag")
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			wantOneLine(t, args, 2, "streamgate: "+c.name+": flag provided but not defined: -no-such-flag")
		})
	}
}

// Bad flag values, stray arguments and listen addresses without a port
// are refused before anything starts: one line, "streamgate: CMD: …",
// exit status 2.
func TestBadValuesAreOneLine(t *testing.T) {
	t.Setenv("STREAMGATE_JWT_SECRET", "s")
	url := "http://127.0.0.1:1/v1/users/{id}"
	cases := []struct {
		name string
		args []string
		want string // the whole line starts with it
	}{
		{"stack store", []string{"stack", "-store", "nope"}, `streamgate: stack: invalid value "nope" for flag -store: want sqlite, memory or postgres`},
		{"service store", []string{"service", "users", "-store", "nope"}, `streamgate: service: invalid value "nope" for flag -store: want sqlite, memory or postgres`},
		{"stack http without port", []string{"stack", "-http", "localhost"}, `streamgate: stack: invalid value "localhost" for flag -http: the port is missing: want HOST:PORT`},
		{"stack admin without port", []string{"stack", "-admin", "127.0.0.1"}, `streamgate: stack: invalid value "127.0.0.1" for flag -admin: the port is missing`},
		{"gateway grpc without port", []string{"gateway", "-config", "x.yaml", "-grpc", "localhost"}, `streamgate: gateway: invalid value "localhost" for flag -grpc: the port is missing`},
		{"gateway bad port", []string{"gateway", "-config", "x.yaml", "-http", "127.0.0.1:http-ish"}, `streamgate: gateway: invalid value "127.0.0.1:http-ish" for flag -http: the port is not a number`},
		{"service listen without port", []string{"service", "echo", "-listen", "localhost"}, `streamgate: service: invalid value "localhost" for flag -listen: the port is missing`},
		{"service admin without port", []string{"service", "echo", "-admin", "localhost"}, `streamgate: service: invalid value "localhost" for flag -admin: the port is missing`},
		{"bench serve listen", []string{"bench", "serve", "direct", "-listen", "localhost"}, `streamgate: bench serve: invalid value "localhost" for flag -listen: the port is missing`},
		{"stack no gateway", []string{"stack", "-gateways", "0"}, `streamgate: stack: -gateways must be at least 1`},
		{"log level", []string{"stack", "-log-level", "loud"}, `streamgate: stack: invalid value "loud" for flag -log-level: want debug, info, warn or error`},
		{"call timeout", []string{"call", "-timeout", "soon", "echo", "ECHO"}, `streamgate: call: invalid value "soon" for flag -timeout`},
		{"load ids", []string{"load", "-ids", "x", url}, `streamgate: load: invalid value "x" for flag -ids`},
		{"load rate", []string{"load", "-rate", "fast", url}, `streamgate: load: invalid value "fast" for flag -rate`},
		{"bench systems", []string{"bench", "compare", "-systems", "direct,nginx"}, `streamgate: bench compare: invalid value "direct,nginx" for flag -systems: unknown system "nginx"`},
		{"bench load CPUs", []string{"bench", "compare", "-load-cpus", "zero"}, `streamgate: bench compare: invalid value "zero" for flag -load-cpus: bench: CPU list "zero": expected CPUs and ranges such as 0,2-3`},
		{"bench server CPUs", []string{"bench", "compare", "-server-cpus", "3-1"}, `streamgate: bench compare: invalid value "3-1" for flag -server-cpus: bench: CPU list "3-1"`},
		{"bench wrk", []string{"bench", "compare", "-wrk", "/no/such/wrk"}, `streamgate: bench compare: invalid value "/no/such/wrk" for flag -wrk: exec: "/no/such/wrk"`},
		{"bench fanout rate", []string{"bench", "fanout", "-rate", "abc"}, `streamgate: bench fanout: invalid value "abc" for flag -rate: rate "abc": want a number of states a second`},
		{"bench fanout zero rate", []string{"bench", "fanout", "-rates", "10,0"}, `streamgate: bench fanout: invalid value "10,0" for flag -rates: rate 0: want a positive number`},
		{"bench fanout no rate", []string{"bench", "fanout"}, `streamgate: bench fanout: give a -rate`},
		{"bench fanout no subscribers", []string{"bench", "fanout", "-subscribers", "0", "-rate", "10"}, `streamgate: bench fanout: -subscribers must be at least 1`},
		{"bench fanout topics", []string{"bench", "fanout", "-subscribers", "5", "-topics", "6", "-rate", "10"}, `streamgate: bench fanout: -topics must be 1 to -subscribers (5)`},
		{"bench fanout CPUs", []string{"bench", "fanout", "-server-cpus", "x", "-rate", "10"}, `streamgate: bench fanout: invalid value "x" for flag -server-cpus`},
		{"bench fixed rate", []string{"bench", "compare", "-fixed-rate", "fast"}, `streamgate: bench compare: invalid value "fast" for flag -fixed-rate: want half, off or a positive number of requests per second, not "fast"`},
		{"bench half without direct", []string{"bench", "compare", "-systems", "streamgate", "-fixed-rate", "half"}, `streamgate: bench compare: -fixed-rate half needs direct among -systems`},
		{"bench load stray argument", []string{"bench", "load", "extra"}, `streamgate: bench load: unexpected argument "extra"`},
		{"bench unknown subcommand", []string{"bench", "frob"}, `streamgate: bench: unknown subcommand "frob"`},
		{"bench without subcommand", []string{"bench"}, `streamgate: bench: want compare or fanout (a subcommand)`},
		{"help of an unknown command", []string{"help", "frob"}, `streamgate: unknown command "frob"`},

		{"stack stray argument", []string{"stack", "extra"}, `streamgate: stack: unexpected argument "extra"`},
		{"gateway stray argument", []string{"gateway", "-config", "x.yaml", "extra"}, `streamgate: gateway: unexpected argument "extra"`},
		{"service stray argument", []string{"service", "echo", "-listen", "127.0.0.1:0", "extra"}, `streamgate: service: unexpected argument "extra"`},
		{"reconcile stray argument", []string{"reconcile", "extra"}, `streamgate: reconcile: unexpected argument "extra"`},
		{"conformance stray argument", []string{"conformance", "extra"}, `streamgate: conformance: unexpected argument "extra"`},
		{"bench compare stray argument", []string{"bench", "compare", "extra"}, `streamgate: bench compare: unexpected argument "extra"`},
		{"load second URL", []string{"load", url, url}, `streamgate: load: unexpected argument "` + url + `"`},
		{"token two subjects", []string{"token", "alice", "bob"}, `streamgate: token: unexpected argument "bob"`},
		{"call too many", []string{"call", "echo", "ECHO", "1", "{}", "extra"}, `streamgate: call: unexpected argument "extra"`},
		{"call -watch with an action", []string{"call", "-watch", "items/*", "inventory", "GET_ITEM"}, `streamgate: call: unexpected argument "GET_ITEM"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantOneLine(t, tc.args, 2, tc.want)
		})
	}
}

// The stack's shared modes refuse what they cannot run, in one line, before
// anything starts.
func TestStackSharedModesRefused(t *testing.T) {
	free := []string{"stack", "-http", "127.0.0.1:0", "-grpc", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", "memory"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"two gateways without redis", []string{"-gateways", "2"}, "streamgate: stack: -gateways 2 needs -redis URL: the gateways share Idempotency-Key state and cache invalidations there"},
		{"nats not a URL", []string{"-nats", "nowhere"}, `streamgate: stack: -nats: expected embedded or a URL such as "nats://127.0.0.1:4222"`},
		{"plaintext nats off loopback", []string{"-nats", "nats://nats.example:4222"}, "streamgate: stack: -nats: refusing plaintext NATS at nats://nats.example:4222 (not loopback): use a tls:// URL, or allow it with -insecure-plaintext"},
		{"nats with python", []string{"-nats", "embedded", "-services", "users=python"}, "streamgate: stack: -nats: the users service in python has no NATS transport yet: run it in go, or the stack without -nats"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantOneLine(t, append(slices.Clone(free), tc.args...), 1, tc.want)
		})
	}
}

// `load` exits 1 when no request succeeded, after printing its report.
func TestLoadFailsWhenEveryRequestFailed(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer failing.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String() + "/"
	closed.Close()
	for _, tc := range []struct {
		name, url, want string
	}{
		{"500", failing.URL + "/v1/users/{id}", "streamgate: load: every request failed (5 of 5)"},
		{"connection refused", refused, "streamgate: load: every request failed (5 of 5)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			status := dispatch(context.Background(), []string{"load", "-c", "1", "-requests", "5", "-duration", "1m", tc.url}, &out, &errOut)
			if status != 1 || strings.TrimSpace(errOut.String()) != tc.want {
				t.Fatalf("status %d, stderr %q; want 1 and %q", status, errOut.String(), tc.want)
			}
			if !strings.Contains(out.String(), "5 in") {
				t.Fatalf("no report on stdout: %s", out.String())
			}
		})
	}
}

// wantOneLine runs args and wants status and one line on stderr that
// starts with want.
func wantOneLine(t *testing.T, args []string, status int, want string) {
	t.Helper()
	var out, errOut bytes.Buffer
	got := dispatch(context.Background(), args, &out, &errOut)
	line := strings.TrimSuffix(errOut.String(), "\n")
	if got != status || strings.Contains(line, "\n") || !strings.HasPrefix(line, want) {
		t.Fatalf("status %d, stderr %q; want %d and one line starting %q", got, errOut.String(), status, want)
	}
}

// A service of the stack that cannot start is named once in the one
// line that says why.
func TestStackServiceErrorNamedOnce(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dsn := "postgres://nobody@" + closed.Addr().String() + "/x?sslmode=disable&connect_timeout=5"
	closed.Close()
	var out, errOut bytes.Buffer
	status := dispatch(context.Background(), []string{"stack", "-http", "127.0.0.1:0", "-grpc", "127.0.0.1:0", "-admin", "127.0.0.1:0",
		"-service-ports=false", "-store", "postgres", "-dsn", dsn, "-log-level", "error"}, &out, &errOut)
	line := strings.TrimSpace(errOut.String())
	if status != 1 || strings.Contains(line, "\n") || !strings.HasPrefix(line, "streamgate: stack: service users: ") || strings.Count(line, "service users:") != 1 {
		t.Fatalf("status %d, stderr %q", status, errOut.String())
	}
}
