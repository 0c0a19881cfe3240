package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/upgradewatch/upgradewatch"

// root is the module's directory, two levels above this package.
var root = filepath.Join("..", "..")

// maxFuncLines bounds a function (its declaration to its closing brace) in
// the packages of maxFuncPackages.
const maxFuncLines = 80

var maxFuncPackages = []string{"internal/watch", "internal/state", "handlers"}

// adapters are the packages that may import the Azure SDK: the Table storage
// repository, ARM reads, the notification sinks (Event Grid), the remediation
// executor, the token checks, the decoding of Azure's own event types, the
// Azurite test helper and the commands that wire everything.
var adapters = []string{
	"internal/state", "internal/arm", "internal/notify", "internal/remediate/armexec",
	"internal/auth", "internal/events", "internal/azuritetest", "cmd/",
}

// forbidden lists, per package, the module packages it must not import: the
// application layer and the HTTP layer reach the adapters only through the
// ports internal/watch declares; the planner stays pure.
var forbidden = map[string][]string{
	"internal/watch":     {"internal/state", "internal/arm", "internal/notify", "internal/remediate/armexec"},
	"handlers":           {"internal/state", "internal/arm", "internal/notify", "internal/remediate/armexec", "internal/remediate"},
	"internal/remediate": {"internal/arm", "internal/state", "internal/notify"},
	"internal/fleet":     {"internal/state", "internal/arm", "internal/notify", "internal/watch"},
}

// pkg is one directory's non-test Go files, parsed.
type pkg struct {
	rel   string // path relative to the module root, slash-separated
	fset  *token.FileSet
	files map[string]*ast.File
}

// packages parses every package of the module (test files left out).
func packages(t *testing.T) []pkg {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from the test's directory: %v", err)
	}
	var out []pkg
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" || name == "vendor") {
			return filepath.SkipDir
		}
		p, err := parseDir(path)
		if err != nil || len(p.files) > 0 {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatalf("read the module: %v", err)
	}
	return out
}

func parseDir(dir string) (pkg, error) {
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return pkg{}, err
	}
	p := pkg{rel: filepath.ToSlash(rel), fset: token.NewFileSet(), files: map[string]*ast.File{}}
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return p, err
	}
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(p.fset, n, nil, parser.SkipObjectResolution)
		if err != nil {
			return p, err
		}
		p.files[n] = f
	}
	return p, nil
}

// imports lists what a package's files import, with the file of each.
func (p pkg) imports() map[string]string {
	out := map[string]string{}
	for name, f := range p.files {
		for _, s := range f.Imports {
			path, err := strconv.Unquote(s.Path.Value)
			if err == nil {
				out[path] = filepath.Base(name)
			}
		}
	}
	return out
}

func under(rel string, prefixes []string) bool {
	for _, pre := range prefixes {
		if rel == strings.TrimSuffix(pre, "/") || strings.HasPrefix(rel, strings.TrimSuffix(pre, "/")+"/") {
			return true
		}
	}
	return false
}

func TestOnlyAdaptersImportAzure(t *testing.T) {
	for _, p := range packages(t) {
		for path, file := range p.imports() {
			if strings.HasPrefix(path, "github.com/Azure/") && !under(p.rel, adapters) {
				t.Errorf("%s/%s imports %s: only adapters (%s) may import the Azure SDK; declare a port in internal/watch instead",
					p.rel, file, path, strings.Join(adapters, ", "))
			}
		}
	}
}

func TestLayers(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range packages(t) {
		deny, ok := forbidden[p.rel]
		if !ok {
			continue
		}
		seen[p.rel] = true
		for path, file := range p.imports() {
			rel, inModule := strings.CutPrefix(path, module+"/")
			if inModule && slices.Contains(deny, rel) {
				t.Errorf("%s/%s imports %s, which that layer must not (see docs/architecture.md)", p.rel, file, rel)
			}
		}
	}
	for rel := range forbidden {
		if !seen[rel] {
			t.Errorf("package %s not found: update the layer rules", rel)
		}
	}
}

func TestFunctionSize(t *testing.T) {
	checked := 0
	for _, p := range packages(t) {
		if !slices.Contains(maxFuncPackages, p.rel) {
			continue
		}
		checked++
		for name, f := range p.files {
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				lines := p.fset.Position(fd.End()).Line - p.fset.Position(fd.Pos()).Line + 1
				if lines > maxFuncLines {
					t.Errorf("%s/%s: %s is %d lines, over %d: split it (a long function is usually two jobs)",
						p.rel, filepath.Base(name), funcName(fd), lines, maxFuncLines)
				}
			}
		}
	}
	if checked != len(maxFuncPackages) {
		t.Errorf("checked %d of the packages %v", checked, maxFuncPackages)
	}
}

func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	recv := fd.Recv.List[0].Type
	if s, ok := recv.(*ast.StarExpr); ok {
		recv = s.X
	}
	if id, ok := recv.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}
