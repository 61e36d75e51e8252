package streamgate_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The code's shape, held by numbers a reader can check (issue 17): the
// gateway's root is assembly only, no package grows past what one reader
// holds, no function is longer than a screen or two, no gateway type
// gathers more than a room's worth of methods, and a service author meets
// a small runtime that knows no shop.
const (
	maxGatewayRootLines   = 800  // non-test lines in package gateway
	maxPackageLines       = 3000 // non-test lines in any non-generated package
	maxFunctionLines      = 80   // lines of any non-test function or method
	maxGatewayTypeMethods = 15   // methods of any type under gateway/
	maxRuntimeExports     = 40   // exported funcs, types and methods of services/socket
)

// goPackage is one directory's non-test Go source.
type goPackage struct {
	dir   string // slash-separated, relative to the module root
	files map[string]*ast.File
	fset  *token.FileSet
	lines int
}

// modulePackages parses every non-test, non-generated Go file of this
// module (not gen/, not other modules such as deploy/, not node_modules).
func modulePackages(t *testing.T) map[string]*goPackage {
	t.Helper()
	pkgs := map[string]*goPackage{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (path == "gen" || d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if path != "." {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		p := pkgs[dir]
		if p == nil {
			p = &goPackage{dir: dir, files: map[string]*ast.File{}, fset: token.NewFileSet()}
			pkgs[dir] = p
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(p.fset, path, src, parser.ParseComments)
		if err != nil {
			return err
		}
		p.files[path] = f
		p.lines += strings.Count(string(src), "\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func TestPackageSizes(t *testing.T) {
	for dir, p := range modulePackages(t) {
		limit := maxPackageLines
		if dir == "gateway" {
			limit = maxGatewayRootLines
		}
		if p.lines > limit {
			t.Errorf("%s: %d non-test lines, more than %d", dir, p.lines, limit)
		}
	}
}

func TestFunctionLengths(t *testing.T) {
	for _, p := range modulePackages(t) {
		for _, f := range p.files {
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok {
					continue
				}
				start, end := p.fset.Position(fn.Pos()), p.fset.Position(fn.End())
				if n := end.Line - start.Line + 1; n > maxFunctionLines {
					t.Errorf("%s:%d: %s is %d lines, more than %d", start.Filename, start.Line, fn.Name.Name, n, maxFunctionLines)
				}
			}
		}
	}
}

func TestGatewayTypeMethods(t *testing.T) {
	for dir, p := range modulePackages(t) {
		if dir != "gateway" && !strings.HasPrefix(dir, "gateway/") {
			continue
		}
		methods := map[string]int{}
		for _, f := range p.files {
			for _, d := range f.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv != nil {
					methods[receiverName(fn.Recv.List[0].Type)]++
				}
			}
		}
		for typ, n := range methods {
			if n > maxGatewayTypeMethods {
				t.Errorf("%s.%s has %d methods, more than %d", dir, typ, n, maxGatewayTypeMethods)
			}
		}
	}
}

// receiverName is the type name of a method's receiver (T, *T, T[P]).
func receiverName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return "?"
		}
	}
}

// TestRuntimeIsSmall counts what `go doc -all` lists for the service-facing
// runtime: exported funcs, types, and the funcs and methods under each type.
func TestRuntimeIsSmall(t *testing.T) {
	p := modulePackages(t)["services/socket"]
	if p == nil {
		t.Fatal("services/socket: no package")
	}
	files := make([]*ast.File, 0, len(p.files))
	for _, f := range p.files {
		files = append(files, f)
	}
	dp, err := doc.NewFromFiles(p.fset, files, "github.com/streamgate/streamgate/services/socket")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range dp.Funcs {
		names = append(names, f.Name)
	}
	for _, typ := range dp.Types {
		names = append(names, typ.Name)
		for _, f := range typ.Funcs {
			names = append(names, f.Name)
		}
		for _, m := range typ.Methods {
			names = append(names, typ.Name+"."+m.Name)
		}
	}
	if len(names) > maxRuntimeExports {
		sort.Strings(names)
		t.Errorf("services/socket exports %d funcs, types and methods, more than %d: %s", len(names), maxRuntimeExports, strings.Join(names, ", "))
	}
}

// TestRuntimeKnowsNoShop: the runtime carries no reason of the shop's
// services; those declare their own.
func TestRuntimeKnowsNoShop(t *testing.T) {
	shopWords := []string{"card_declined", "insufficient_funds", "insufficient_stock", "voucher", "purchasable"}
	err := filepath.WalkDir("services/socket", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, w := range shopWords {
			if strings.Contains(string(src), w) {
				t.Errorf("%s mentions the shop's %q", path, w)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
