package internal_test

// The layering rules of docs/architecture.md, checked on every file so that
// a newcomer's shortcut fails a test rather than a review:
//   - a service's business and store files never import net/http or httpx
//     (HTTP lives in its http*.go files and in client.go, its HTTP client);
//   - services never import each other; they meet through interfaces that
//     the consumer defines, wired in internal/app;
//   - internal/platform/... is business-agnostic: it imports no service,
//     nor any other reel package outside platform;
//   - internal/media (everything that runs ffmpeg) is business-agnostic too:
//     it imports platform packages and its own, no service nor the wiring.

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/reel-video/reel/"

var services = []string{"users", "videos", "storage", "usage", "logs"}

// httpFile reports whether a service file may speak HTTP.
func httpFile(name string) bool {
	return name == "client.go" || strings.HasPrefix(name, "http")
}

// imports lists the reel-relative or standard import paths of every
// non-test Go file under dir, keyed by the file's path.
func imports(t *testing.T, dir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, im := range f.Imports {
			p, err := strconv.Unquote(im.Path.Value)
			if err != nil {
				return err
			}
			out[path] = append(out[path], strings.TrimPrefix(p, module))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestServiceFilesDoNotSpeakHTTP(t *testing.T) {
	for _, svc := range services {
		files := imports(t, svc)
		if len(files) == 0 {
			t.Fatalf("no Go files found under internal/%s: has the layout changed?", svc)
		}
		for path, paths := range files {
			if httpFile(filepath.Base(path)) {
				continue
			}
			for _, p := range paths {
				if p == "net/http" || strings.HasPrefix(p, "net/http/") || p == "internal/platform/httpx" {
					t.Errorf("%s imports %s: business and store files stay free of HTTP (move the code to an http*.go file)", path, p)
				}
			}
		}
	}
}

func TestServicesDoNotImportEachOther(t *testing.T) {
	for _, svc := range services {
		for path, paths := range imports(t, svc) {
			for _, p := range paths {
				for _, other := range services {
					if other != svc && (p == "internal/"+other || strings.HasPrefix(p, "internal/"+other+"/")) {
						t.Errorf("%s imports %s: services meet through consumer-defined interfaces wired in internal/app", path, p)
					}
				}
			}
		}
	}
}

func TestPlatformIsBusinessAgnostic(t *testing.T) {
	files := imports(t, "platform")
	if len(files) == 0 {
		t.Fatal("no Go files found under internal/platform")
	}
	for path, paths := range files {
		for _, p := range paths {
			if strings.HasPrefix(p, "internal/") && !strings.HasPrefix(p, "internal/platform/") {
				t.Errorf("%s imports %s: internal/platform must not depend on reel's services or wiring", path, p)
			}
		}
	}
}

func TestMediaIsBusinessAgnostic(t *testing.T) {
	files := imports(t, "media")
	if len(files) == 0 {
		t.Fatal("no Go files found under internal/media: has the layout changed?")
	}
	for path, paths := range files {
		for _, p := range paths {
			if strings.HasPrefix(p, "internal/") && !strings.HasPrefix(p, "internal/platform/") && p != "internal/media" && !strings.HasPrefix(p, "internal/media/") {
				t.Errorf("%s imports %s: internal/media must not depend on reel's services or wiring", path, p)
			}
		}
	}
}
