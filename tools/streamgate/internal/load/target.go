package load

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// IDPlaceholder in a URL or body is replaced by the request's id.
const IDPlaceholder = "{id}"

// Range is an inclusive range of ids; requests take them in turn,
// starting again at From after To.
type Range struct {
	From, To int64
}

// ParseRange reads "FROM-TO" (e.g. "1-1000") or a single id.
func ParseRange(s string) (Range, error) {
	from, to, found := strings.Cut(strings.TrimSpace(s), "-")
	a, err := strconv.ParseInt(from, 10, 64)
	if err != nil {
		return Range{}, fmt.Errorf("ids %q: want FROM-TO, e.g. 1-1000", s)
	}
	b := a
	if found {
		if b, err = strconv.ParseInt(to, 10, 64); err != nil {
			return Range{}, fmt.Errorf("ids %q: want FROM-TO, e.g. 1-1000", s)
		}
	}
	if b < a {
		return Range{}, fmt.Errorf("ids %q: TO is less than FROM", s)
	}
	return Range{From: a, To: b}, nil
}

// nth is the id of the n-th request (from 0).
func (r Range) nth(n uint64) int64 {
	size := uint64(r.To-r.From) + 1
	return r.From + int64(n%size)
}

// String is "FROM-TO".
func (r Range) String() string { return fmt.Sprintf("%d-%d", r.From, r.To) }

// ParseHeader reads "Name: value" into h.
func ParseHeader(h http.Header, s string) error {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return fmt.Errorf("header %q: want 'Name: value'", s)
	}
	h.Add(name, strings.TrimSpace(value))
	return nil
}

// ParseRate reads "R", "R/s" or "R/DURATION" (e.g. "500/s", "30/1m") into
// a count and the period it is spread over.
func ParseRate(s string) (int, time.Duration, error) {
	count, per, found := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.Atoi(count)
	if err != nil || n < 0 {
		return 0, 0, fmt.Errorf("rate %q: want R/s, e.g. 500/s", s)
	}
	d := time.Second
	if found && per != "s" {
		if !strings.ContainsAny(per, "0123456789") {
			per = "1" + per
		}
		if d, err = time.ParseDuration(per); err != nil || d <= 0 {
			return 0, 0, fmt.Errorf("rate %q: want R/s, e.g. 500/s", s)
		}
	}
	return n, d, nil
}

// checkLoopback refuses a URL whose host is not on this machine: the
// tool only loads servers on loopback.
func checkLoopback(raw string) error {
	u, err := url.Parse(strings.ReplaceAll(raw, IDPlaceholder, "0"))
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("url %q: want http:// or https://", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("url: load only targets loopback (127.0.0.0/8, [::1] or localhost)")
}
