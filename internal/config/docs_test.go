package config_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
)

// Every REEL_* variable that the deploy files and the operator docs set or
// name is one reel reads: a typo there would be ignored silently at run
// time (a service on its defaults, a limit not applied).
func TestDocsAndDeployNameKnownVariables(t *testing.T) {
	_, p, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	known := p.Pairs()
	// Read elsewhere: by `reel loadtest` and by the test helpers.
	for _, v := range []string{"REEL_LOADTEST_ADMIN_PASSWORD", "REEL_TEST_POSTGRES_URL", "REEL_TEST_S3_URL", "REEL_TEST_OUTPUT", "REEL_TEST_UPGRADE_BASE",
		"REEL_TEST_CRASH", "REEL_TEST_CRASH_ROUNDS", "REEL_TEST_CRASH_SEED", "REEL_TEST_CRASH_POSTGRES"} {
		known[v] = ""
	}
	root := filepath.Join("..", "..")
	var files []string
	for _, f := range []string{"README.md", "docs/operations.md", "docs/architecture.md"} {
		files = append(files, filepath.Join(root, f))
	}
	err = filepath.WalkDir(filepath.Join(root, "deploy"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// A name ending in _ or < is a pattern such as REEL_<SERVICE>_URL.
	name := regexp.MustCompile(`REEL_[A-Z0-9_]*[A-Z0-9]\b`)
	unknown := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllString(string(b), -1) {
			if _, ok := known[m]; !ok {
				unknown[m] = append(unknown[m], f)
			}
		}
	}
	var names []string
	for n := range unknown {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Errorf("%s (in %v) is no variable reel reads", n, unique(unknown[n]))
	}
}

func unique(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
