package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/reel-video/reel/internal/app"
	"github.com/reel-video/reel/internal/videos"
)

// errFindings ends reel check with exit status 1: it found differences
// (with -fix, some that it did not repair). Its report is printed already.
var errFindings = errors.New("the check found differences")

// checkCmd runs reel check: the report on stdout, one line per finding
// and a summary (or the JSON report with -json).
func checkCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var opt videos.CheckOptions
	var asJSON bool
	cfg, log, err := load("check", args, getenv, stdout, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&opt.Fix, "fix", false, "repair what can be repaired safely: delete orphan blobs, correct ledgers, have missing posters, renditions and storyboards made again, release lapsed reservations")
		fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
		fs.DurationVar(&opt.Grace, "grace", videos.DefaultCheckGrace, "leave alone what changed more recently than this, as possibly in flight (0: nothing)")
	})
	if err != nil {
		return err
	}
	if opt.Grace <= 0 {
		opt.Grace = -1 // none: the flag's 0 means no grace, not the default
	}
	rep, err := app.Check(ctx, cfg, log, opt)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		for _, f := range rep.Findings {
			fmt.Fprintln(stdout, f)
		}
		for _, u := range rep.Unchecked {
			fmt.Fprintln(stdout, "not checked:", u)
		}
		fixed := len(rep.Findings) - rep.Unfixed()
		fmt.Fprintf(stdout, "checked %d videos, %d blobs, %d storage accounts (%d left alone, changed within %s) in %s: %d findings, %d fixed\n",
			rep.Videos, rep.Blobs, rep.Accounts, rep.InFlight, max(opt.Grace, 0), rep.Finished.Sub(rep.Started).Round(time.Millisecond),
			len(rep.Findings), fixed)
	}
	if rep.Unfixed() > 0 {
		return errFindings
	}
	return nil
}
