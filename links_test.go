package streamgate_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// docPages are the pages whose relative links must resolve: the front
// door, the architecture, the results pages and every page under docs/.
func docPages(t *testing.T) []string {
	t.Helper()
	pages := []string{"README.md", "ARCHITECTURE.md", "BENCHMARKS.md", "RELIABILITY.md", "CHANGELOG.md"}
	more, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append(pages, more...)
}

var (
	fenceRE  = regexp.MustCompile("(?ms)^```.*?^```[ \t]*$")
	codeRE   = regexp.MustCompile("`[^`]*`")
	linkRE   = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	schemeRE = regexp.MustCompile(`^[a-z][a-z0-9+.-]*:`)
)

// TestDocLinks: every relative link in the pages names a file that
// exists and, when it has a #fragment into a Markdown page, a heading of
// that page (GitHub's anchors).
func TestDocLinks(t *testing.T) {
	t.Parallel()
	for _, page := range docPages(t) {
		text := readText(t, page)
		prose := codeRE.ReplaceAllString(fenceRE.ReplaceAllString(text, ""), "")
		for _, m := range linkRE.FindAllStringSubmatch(prose, -1) {
			target := m[1]
			if schemeRE.MatchString(target) {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: link %q: %v", page, target, err)
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(path, ".md") {
				continue
			}
			if !headingAnchors(readText(t, path))[anchor] {
				t.Errorf("%s: link %q: %s has no heading with anchor #%s", page, target, path, anchor)
			}
		}
	}
}

// headingAnchors returns the anchors GitHub gives a page's headings:
// lower case, punctuation dropped, spaces to hyphens, repeats numbered.
func headingAnchors(doc string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, line := range strings.Split(fenceRE.ReplaceAllString(doc, ""), "\n") {
		trimmed := strings.TrimLeft(line, "#")
		if trimmed == line || !strings.HasPrefix(trimmed, " ") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(trimmed)) {
			switch {
			case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			anchors[a+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	}
	return anchors
}

func TestHeadingAnchors(t *testing.T) {
	t.Parallel()
	got := headingAnchors("# Title\n## The endpoint: `/{version}/socket`\n```\n# not a heading\n```\n## 12 Conformance fixtures\n## Title\n")
	for _, want := range []string{"title", "the-endpoint-versionsocket", "12-conformance-fixtures", "title-1"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a comment in a code block counted as a heading")
	}
}

// mdCiteRE finds a Markdown or Go file named in a comment: RELIABILITY.md,
// docs/protocol.md, services/node/README.md, gateway/invoke/path.go.
var mdCiteRE = regexp.MustCompile(`[A-Za-z0-9_./-]*[A-Za-z0-9_]\.(md|go)\b`)

// TestCommentsCiteExistingDocs: a Go or proto comment that names a .md or
// .go file names one that exists, from the repository's root or from the
// commenting file's directory or one above it (code moves; its citations
// move with it).
func TestCommentsCiteExistingDocs(t *testing.T) {
	t.Parallel()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == "node_modules" || (strings.HasPrefix(name, ".") && path != ".") {
				return filepath.SkipDir
			}
			return nil
		}
		var comments []string
		switch filepath.Ext(path) {
		case ".go":
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
			if err != nil {
				return err
			}
			for _, g := range f.Comments {
				comments = append(comments, g.Text())
			}
		case ".proto":
			for _, line := range strings.Split(readText(t, path), "\n") {
				if _, c, ok := strings.Cut(line, "//"); ok {
					comments = append(comments, c)
				}
			}
		default:
			return nil
		}
		for _, c := range comments {
			for _, at := range mdCiteRE.FindAllStringIndex(c, -1) {
				cited := c[at[0]:at[1]]
				if strings.HasPrefix(c[at[1]:], ".") || strings.HasPrefix(cited, "//") {
					continue // a host name (pkg.go.dev), not a file
				}
				if !citedExists(path, strings.TrimPrefix(cited, "./")) {
					t.Errorf("%s: a comment cites %s, which does not exist", path, cited)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// citedExists reports whether name exists from the root, or from the
// directory of the file citing it or any directory above that.
func citedExists(from, name string) bool {
	for dir := filepath.Dir(from); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
		if dir == "." || dir == "/" {
			return false
		}
	}
}
