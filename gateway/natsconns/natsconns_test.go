package natsconns_test

import (
	"strings"
	"testing"

	"github.com/streamgate/streamgate/gateway/natsconns"
	"github.com/streamgate/streamgate/internal/natstest"
)

// One connection per URL, shared, closed with its last user.
func TestConnsShareAndClose(t *testing.T) {
	url := natstest.Embedded(t)
	var conns natsconns.Conns
	a, err := conns.Acquire(url, "test")
	if err != nil {
		t.Fatal(err)
	}
	b, err := conns.Acquire(url, "test")
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("two users of one URL got two connections")
	}
	conns.Release(url)
	if a.IsClosed() {
		t.Fatal("closed while a user is left")
	}
	conns.Release(url)
	if !a.IsClosed() {
		t.Fatal("open after its last user left")
	}
	c, err := conns.Acquire(url, "test")
	if err != nil {
		t.Fatal(err)
	}
	conns.CloseAll()
	if !c.IsClosed() {
		t.Fatal("CloseAll left a connection open")
	}
}

func TestCheckPlaintext(t *testing.T) {
	for _, tc := range []struct {
		url     string
		allowed bool
		ok      bool
	}{
		{"nats://127.0.0.1:4222", false, true},
		{"tls://nats.example.com:4222", false, true},
		{"nats://nats.example.com:4222", true, true},
		{"nats://user:secret@nats.example.com:4222", false, false},
	} {
		err := natsconns.CheckPlaintext("users", tc.url, tc.allowed)
		if (err == nil) != tc.ok {
			t.Errorf("%s allowed %v: %v", tc.url, tc.allowed, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the refusal repeats the password: %v", err)
		}
	}
}
