// Package cliflag holds the flag values streamgate's commands share, each
// checked when the flag is parsed, so a bad value is refused on the
// command line (exit status 2) before anything starts:
//
//	fs := flag.NewFlagSet("stack", flag.ContinueOnError)
//	httpAddr := cliflag.Listen(fs, "http", "127.0.0.1:8080", "REST listen address")
//	store := cliflag.Enum(fs, "store", "sqlite", []string{"sqlite", "memory", "postgres"}, "where the services keep data")
//	err := fs.Parse([]string{"-http", "localhost"})
//	// invalid value "localhost" for flag -http: the port is missing: want HOST:PORT, e.g. 127.0.0.1:8080
package cliflag

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Listen declares a listen-address flag: HOST:PORT with a port from 0 to
// 65535 (HOST may be empty: every interface; port 0: a free port). The
// empty string is accepted too: the command decides what it means
// (usually: that listener is off).
func Listen(fs *flag.FlagSet, name, value, usage string) *string {
	p := new(string)
	*p = value
	fs.Func(name, usage+withDefault(value), func(s string) error {
		if err := CheckListen(s); err != nil {
			return err
		}
		*p = s
		return nil
	})
	return p
}

// CheckListen says what is wrong with a listen address, or nil; "" is
// accepted.
func CheckListen(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	var ae *net.AddrError
	switch {
	case errors.As(err, &ae) && ae.Err == "missing port in address":
		return errors.New("the port is missing: want HOST:PORT, e.g. 127.0.0.1:8080")
	case err != nil:
		return errors.New("want HOST:PORT, e.g. 127.0.0.1:8080")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return errors.New("the port is not a number from 0 to 65535: want HOST:PORT, e.g. 127.0.0.1:8080")
	}
	return nil
}

// Enum declares a flag whose value is one of allowed.
func Enum(fs *flag.FlagSet, name, value string, allowed []string, usage string) *string {
	p := new(string)
	*p = value
	fs.Func(name, usage+withDefault(value), func(s string) error {
		if !slices.Contains(allowed, s) {
			return fmt.Errorf("want %s", oneOf(allowed))
		}
		*p = s
		return nil
	})
	return p
}

// oneOf is "a, b or c".
func oneOf(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// withDefault is the " (default …)" the flag package adds to a usage line
// for the values it knows, which it cannot for a Func.
func withDefault(value string) string {
	if value == "" {
		return ""
	}
	return fmt.Sprintf(" (default %q)", value)
}
