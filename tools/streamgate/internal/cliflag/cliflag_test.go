package cliflag_test

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/tools/streamgate/internal/cliflag"
)

func TestListen(t *testing.T) {
	for _, tc := range []struct {
		value, err string // err: "" when accepted
	}{
		{"127.0.0.1:8080", ""},
		{":0", ""},
		{"[::1]:9090", ""},
		{"", ""},
		{"localhost", `invalid value "localhost" for flag -http: the port is missing: want HOST:PORT`},
		{"127.0.0.1", "the port is missing"},
		{"127.0.0.1:http", "the port is not a number"},
		{"127.0.0.1:70000", "the port is not a number from 0 to 65535"},
		{"[::1", "want HOST:PORT"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			addr := cliflag.Listen(fs, "http", "127.0.0.1:1", "REST")
			err := fs.Parse([]string{"-http", tc.value})
			switch {
			case tc.err == "" && (err != nil || *addr != tc.value):
				t.Fatalf("%q: %v, addr %q", tc.value, err, *addr)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || *addr != "127.0.0.1:1"):
				t.Fatalf("%q: %v, want %q and the default kept (%q)", tc.value, err, tc.err, *addr)
			}
		})
	}
}

func TestEnum(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	store := cliflag.Enum(fs, "store", "sqlite", []string{"sqlite", "memory", "postgres"}, "where")
	if err := fs.Parse([]string{"-store", "redis"}); err == nil || !strings.HasSuffix(err.Error(), "want sqlite, memory or postgres") {
		t.Fatalf("%v", err)
	}
	if err := fs.Parse([]string{"-store", "memory"}); err != nil || *store != "memory" {
		t.Fatalf("%v %q", err, *store)
	}
}
