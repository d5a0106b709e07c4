package text_test

import (
	"testing"

	"github.com/reel-video/reel/internal/platform/text"
)

func TestHasDeceptive(t *testing.T) {
	for s, want := range map[string]bool{
		"ann":                 false,
		"Café au lait 🎬":      false,
		"日本語のタイトル":            false,
		"a\u200bnn":           true,
		"zero\u200cjoiner":    true,
		"\u200dglued":         true,
		"ltr\u200emark":       true,
		"rtl\u200fmark":       true,
		"embed\u202a":         true,
		"\u202eoverride":      true,
		"isolate\u2066":       true,
		"pop\u2069":           true,
		"\ufeffbom":           true,
		"soft\u00adhyphen":    false, // visible where it breaks a line
		"arabic \u0627\u0644": false,
	} {
		if got := text.HasDeceptive(s); got != want {
			t.Errorf("HasDeceptive(%q) = %v, want %v", s, got, want)
		}
	}
}
