package config_test

import (
	"os"
	"testing"

	"github.com/streamgate/streamgate/gateway/config"
)

// FuzzParse checks that Parse never panics, and that what it accepts is
// complete: every route has a method, an action or pipeline, and a
// deadline.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(example),
		"",
		"versions: {v1: {resources: {users: users}}}\nservices: {users: {target: a:1}}\n",
		pipeline("              - parallel: [{action: A, id: '${path.id}'}, {action: B}]\n              - {action: C, body: {x: '${a.y}'}}\n"),
		"http: &a {cors: *a}\n",
		"a: &a [*a, *a]\nb: &b [*a, *a]\nc: [*b, *b]\n",
		"versions:\n  v1: {extends: v2}\n  v2: {extends: v1}\n",
		"auth: {jwt: [{issuer: x, public_key_files: [/dev/zero]}]}\n",
		"- [\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("testdata/fuzz.yaml", data, func(string) string { return "secret" })
		if err != nil {
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		for _, v := range cfg.Versions {
			for _, r := range v.Resources {
				for _, rt := range r.Routes {
					if rt.Method == "" || rt.Timeout <= 0 || (rt.Action == "" && rt.Pipeline == nil) {
						t.Fatalf("incomplete route %+v", rt)
					}
				}
			}
		}
	})
}
