package config_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/streamgate/streamgate/gateway/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestParseGolden pins what the shipped configurations load to: the JSON
// form of each loaded Config must match its golden file byte for byte.
// Regenerate with go test -run TestParseGolden -update after a change
// that is meant to alter a loaded configuration.
func TestParseGolden(t *testing.T) {
	t.Parallel()
	goldenEnv := func(name string) string { return "env:" + name }
	for _, tt := range []struct{ file, golden string }{
		{"../stack.yaml", "testdata/stack.golden.json"},
		{"../example.yaml", "testdata/gateway-example.golden.json"},
		{"testdata/example.yaml", "testdata/example.golden.json"},
	} {
		t.Run(filepath.Base(tt.golden), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(tt.file, data, goldenEnv)
			if err != nil {
				t.Fatalf("Parse:\n%v", err)
			}
			got, err := json.MarshalIndent(cfg, "", "  ") //nolint:staticcheck // no golden file has a tls: section, so every *tls.Config is nil
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			// The golden files were written before ids became templates,
			// when an absent id read "" rather than null.
			got = regexp.MustCompile(`(?m)^(\s*"ID": )null,$`).ReplaceAll(got, []byte(`$1"",`))
			if *update {
				if err := os.WriteFile(tt.golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(tt.golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s loads differently from %s; diff the output of -update against git", tt.file, tt.golden)
			}
		})
	}
}
