package coalesce_test

import (
	"bytes"
	"testing"

	"github.com/streamgate/streamgate/internal/coalesce"
)

func TestCanonicalJSON(t *testing.T) {
	t.Parallel()
	same := []struct{ name, a, b string }{
		{"key order", `{"a":1,"b":2}`, `{"b":2,"a":1}`},
		{"whitespace", "{ \"a\" : [1, 2] ,\n\t\"b\":null }", `{"a":[1,2],"b":null}`},
		{"nested key order", `{"x":{"b":{"d":1,"c":2},"a":[{"z":1,"y":2}]}}`, `{"x":{"a":[{"y":2,"z":1}],"b":{"c":2,"d":1}}}`},
		{"scalar spacing", `  "text" `, `"text"`},
		{"large numbers kept exactly", `{"n":12345678901234567890123}`, `{ "n" : 12345678901234567890123 }`},
		{"empty and absent", "", "  \n"},
		{"escaped keys", `{"b":1,"\u0061":2}`, `{"a":2,"b":1}`},
		{"HTML characters in values", `{"a":"<&>"}`, `{ "a" : "<&>" }`},
		{"deep nesting", `[[[[[[[[[[[[[[[[[[{"b":1,"a":2}]]]]]]]]]]]]]]]]]]`, `[[[[[[[[[[[[[[[[[[{"a":2,"b":1}]]]]]]]]]]]]]]]]]]`},
	}
	for _, tc := range same {
		t.Run("same/"+tc.name, func(t *testing.T) {
			a, b := coalesce.CanonicalJSON([]byte(tc.a)), coalesce.CanonicalJSON([]byte(tc.b))
			if !bytes.Equal(a, b) {
				t.Fatalf("%s → %s\n%s → %s\nwant equal", tc.a, a, tc.b, b)
			}
			if coalesce.Key("GET", "1", []byte(tc.a), "v1", "", "") != coalesce.Key("GET", "1", []byte(tc.b), "v1", "", "") {
				t.Fatal("equal bodies give different coalescing keys")
			}
		})
	}
	differ := []struct{ name, a, b string }{
		{"values", `{"a":1}`, `{"a":2}`},
		{"array order", `[1,2]`, `[2,1]`},
		{"number spelling", `{"a":1}`, `{"a":1.0}`},
		{"string spacing", `{"a":"x y"}`, `{"a":"xy"}`},
		{"null and empty", `null`, ``},
		{"invalid JSON is kept as is", `{"a":1`, `{"a": 1`},
		{"keys differ", `{"a":1,"b":2}`, `{"a":1,"c":2}`},
		{"keys equal but for case, in other orders", `{"page_size":1,"PAGE_SIZE":2}`, `{"PAGE_SIZE":2,"page_size":1}`},
		{"trailing data", `{"name":"k"}}`, `{"name":"k"}`},
		{"trailing value", `{"b":1, "a":2} 7`, `{"a":2,"b":1}`},
		{"non-JSON space", "\u00a0{\"name\":\"k\"}", `{"name":"k"}`},
	}
	for _, tc := range differ {
		t.Run("differ/"+tc.name, func(t *testing.T) {
			if a, b := coalesce.CanonicalJSON([]byte(tc.a)), coalesce.CanonicalJSON([]byte(tc.b)); bytes.Equal(a, b) {
				t.Fatalf("%q and %q both → %s; want different", tc.a, tc.b, a)
			}
		})
	}
}

func TestKeyTellsRequestsApart(t *testing.T) {
	t.Parallel()
	alice := coalesce.Scope("alice", nil)
	base := coalesce.Key("GET_USER", "1", []byte(`{"a":1}`), "v1", alice, "")
	cases := []struct{ name, key string }{
		{"action", coalesce.Key("GET_ORDER", "1", []byte(`{"a":1}`), "v1", alice, "")},
		{"id", coalesce.Key("GET_USER", "2", []byte(`{"a":1}`), "v1", alice, "")},
		{"body", coalesce.Key("GET_USER", "1", []byte(`{"a":2}`), "v1", alice, "")},
		{"version", coalesce.Key("GET_USER", "1", []byte(`{"a":1}`), "v2", alice, "")},
		{"principal", coalesce.Key("GET_USER", "1", []byte(`{"a":1}`), "v1", coalesce.Scope("bob", nil), "")},
		{"roles", coalesce.Key("GET_USER", "1", []byte(`{"a":1}`), "v1", coalesce.Scope("alice", []string{"admin"}), "")},
		{"public", coalesce.Key("GET_USER", "1", []byte(`{"a":1}`), "v1", "", "")},
		{"id and version shifted", coalesce.Key("GET_USER", "1\x00v1", []byte(`{"a":1}`), "", alice, "")},
		{"epoch", coalesce.Key("GET_USER", "1", []byte(`{"a":1}`), "v1", alice, "1,0")},
	}
	for _, tc := range cases {
		if tc.key == base {
			t.Errorf("%s: the key does not change", tc.name)
		}
	}
}
