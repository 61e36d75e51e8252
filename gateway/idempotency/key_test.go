package idempotency_test

import (
	"strings"
	"testing"

	"github.com/streamgate/streamgate/gateway/idempotency"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
		ok             bool
	}{
		{"bare", "8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324", true},
		{"quoted, as the draft spells it", `"8e03978e"`, "8e03978e", true},
		{"quoted with escapes", `"a\"b\\c"`, `a"b\c`, true},
		{"space inside", "a b", "a b", true},
		{"255 bytes", strings.Repeat("k", 255), strings.Repeat("k", 255), true},
		{"empty", "", "", false},
		{"empty quoted", `""`, "", false},
		{"256 bytes", strings.Repeat("k", 256), "", false},
		{"256 bytes inside quotes", `"` + strings.Repeat("k", 256) + `"`, "", false},
		{"tab", "a\tb", "", false},
		{"NUL", "a\x00b", "", false},
		{"DEL", "a\x7fb", "", false},
		{"not ASCII", "clé", "", false},
		{"bad escape", `"a\nb"`, "", false},
		{"bare quote inside quotes", `"a"b"`, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := idempotency.ParseKey(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("ParseKey(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"k", `"k"`, `"a\"b"`, "a\tb", strings.Repeat("k", 256), `"\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := idempotency.ParseKey(s)
		if err != nil {
			return
		}
		if len(k) == 0 || len(k) > idempotency.MaxKeyLength {
			t.Fatalf("ParseKey(%q) accepted %q", s, k)
		}
		for i := 0; i < len(k); i++ {
			if k[i] < 0x20 || k[i] > 0x7e {
				t.Fatalf("ParseKey(%q) accepted a control or non-ASCII byte: %q", s, k)
			}
		}
	})
}

func TestScopesAreApart(t *testing.T) {
	t.Parallel()
	base := idempotency.Scope{Principal: `"alice"`, Version: "v1", Route: "POST /v1/orders/{id}/pay", Key: "k"}
	ids := map[string]string{base.ID(): "base"}
	for name, s := range map[string]idempotency.Scope{
		"principal": {Principal: `"bob"`, Version: "v1", Route: base.Route, Key: "k"},
		"version":   {Principal: base.Principal, Version: "v2", Route: "POST /v2/orders/{id}/pay", Key: "k"},
		"route":     {Principal: base.Principal, Version: "v1", Route: "POST /v1/orders/{id}/refund", Key: "k"},
		"key":       {Principal: base.Principal, Version: "v1", Route: base.Route, Key: "k2"},
		"boundary":  {Principal: base.Principal + "v1", Version: "", Route: base.Route, Key: "k"},
	} {
		if other, dup := ids[s.ID()]; dup {
			t.Fatalf("%s shares an id with %s", name, other)
		}
		ids[s.ID()] = name
	}
	if base.ID() != (idempotency.Scope{Principal: `"alice"`, Version: "v1", Route: "POST /v1/orders/{id}/pay", Key: "k"}).ID() {
		t.Fatal("the id is not deterministic")
	}
	if k := idempotency.DerivedKey(base.ID(), "charge"); len(k) != 32+len(":charge") || !strings.HasSuffix(k, ":charge") {
		t.Fatalf("derived key %q", k)
	}
	if idempotency.Fingerprint("POST", "/v1/orders/7/pay", "", []byte(`{"a":1}`)) == idempotency.Fingerprint("POST", "/v1/orders/7/pay", "", []byte(`{"a":2}`)) {
		t.Fatal("two bodies share a fingerprint")
	}
}
