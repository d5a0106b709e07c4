package videos

import (
	"errors"
	"testing"
)

// Titles others will read refuse invisible formatting (a title that reads
// backwards, or looks like another) as they refuse control characters;
// ordinary text in any script, emoji included, passes.
func TestMetaRefusesDeceptiveText(t *testing.T) {
	for title, ok := range map[string]bool{
		"Holiday at the sea 🌊": true,
		"Ünïcödé – ευχαριστώ":  true,
		"evil\u202egpj.exe":    false,
		"zero\u200bwidth":      false,
		"isolate\u2066x\u2069": false,
		"bell\a":               false,
	} {
		_, err := Meta{Title: title}.Validate()
		if (err == nil) != ok || err != nil && !errors.Is(err, ErrValidation) {
			t.Errorf("title %q: %v, want ok=%v", title, err, ok)
		}
		_, err = Meta{Title: "t", Description: title}.Validate()
		if (err == nil) != ok {
			t.Errorf("description %q: %v, want ok=%v", title, err, ok)
		}
	}
}
