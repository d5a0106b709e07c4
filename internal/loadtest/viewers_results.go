package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// ViewersResults is what a viewers run measured, as written to
// viewers.json.
type ViewersResults struct {
	Tool   string `json:"tool"`
	Target string `json:"target"`
	// Mode is "reel" (grants through the API) or "files" (a master
	// playlist's path on a plain file server).
	Mode      string    `json:"mode"`
	VideoID   string    `json:"video_id,omitempty"`
	Master    string    `json:"master,omitempty"`
	StartedAt time.Time `json:"started_at"`
	Accounts  int       `json:"accounts,omitempty"`
	// Rung is what the viewers play.
	Rung ViewersRung `json:"rung"`
	// IntervalS replaced the segments' durations as the pace, when set.
	IntervalS   float64       `json:"interval_s,omitempty"`
	TargetP99MS float64       `json:"target_p99_ms"`
	StepS       float64       `json:"step_s"`
	Steps       []ViewersStep `json:"steps"`
	// Best is the most viewers of a step that passed, every step before
	// it having passed too; 0 when the first failed.
	Best int `json:"best"`
	// StopReason: "failed" (a step missed the target), "max" (the last
	// step ran) or "interrupted".
	StopReason string `json:"stop_reason"`
	// API is the requests to reel's API: accounts' setup and grants.
	API        []RouteResult `json:"api,omitempty"`
	ServerPIDs []int         `json:"server_pids,omitempty"`
	Notes      []string      `json:"notes,omitempty"`
	Client     ClientInfo    `json:"client"`
}

// ViewersRung is the rendition the viewers play.
type ViewersRung struct {
	Playlist  string  `json:"playlist"`
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	Bandwidth int64   `json:"bandwidth"`
	Segments  int     `json:"segments"`
	SegmentS  float64 `json:"segment_s"`     // mean duration
	Bytes     int64   `json:"segment_bytes"` // mean size
}

// ViewersStep is one step's figures. A request belongs to the step in
// which it was sent.
type ViewersStep struct {
	Viewers int `json:"viewers"`
	// Playing is how many viewers were fetching segments at the step's
	// end (the others still getting their grant and playlists, or failed
	// to).
	Playing   int64   `json:"playing"`
	StartS    float64 `json:"start_s"`
	DurationS float64 `json:"duration_s"`
	Requests  uint64  `json:"requests"`
	Errors    uint64  `json:"errors"`
	Segments  uint64  `json:"segments"`
	// TTFB is the segments' time from the request written to the first
	// byte of the answer; Download to the last byte.
	TTFB     Latency `json:"ttfb_ms"`
	Download Latency `json:"download_ms"`
	MiBps    float64 `json:"mib_per_s"`
	// Late counts segment requests sent more than lateAfter behind their
	// schedule by the generator itself (its timers woke late: a busy
	// generator), the largest such delay in MaxLateMS.
	Late      uint64  `json:"late"`
	MaxLateMS float64 `json:"max_late_ms"`
	// Dials counts connections opened: one per viewer, more when
	// connections were closed.
	Dials uint64 `json:"dials"`
	// CPU in cores (CPU seconds per second) of the generator, of the
	// server processes (ServerPIDs) and of the whole machine; the
	// servers' largest resident memory. -1 when not known.
	GeneratorCPU float64 `json:"generator_cpu"`
	ServerCPU    float64 `json:"server_cpu"`
	MachineCPU   float64 `json:"machine_cpu"`
	ServerRSSMiB float64 `json:"server_rss_mib"`
	Pass         bool    `json:"pass"`
	// Routes holds each kind of request's figures (TTFB for the HLS
	// files), with statuses and transport errors.
	Routes []RouteResult `json:"routes"`
}

// ViewersFile is the file name WriteViewers writes the results to, and
// ViewersChartFile the chart's.
const (
	ViewersFile      = "viewers.json"
	ViewersChartFile = "viewers.svg"
)

// WriteViewers writes res as viewers.json and its chart (segment TTFB
// by step) as viewers.svg into dir.
func WriteViewers(dir string, res *ViewersResults) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results dir: %w", err)
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ViewersFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ViewersChartFile), []byte(ViewersChart(res).SVG()), 0o644); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	return nil
}

// ViewersChart draws each step's segment TTFB (p50, p99) and the
// generator's and server's CPU against the number of viewers.
func ViewersChart(res *ViewersResults) Chart {
	c := Chart{Title: "Segment time to first byte by concurrent viewers (" + res.Target + ")", XLabel: "viewers",
		YLabel: "TTFB", YUnit: "ms", LogY: true, Width: 900, Height: 320,
		Target: &Target{Y: res.TargetP99MS, Label: "p99 target " + strconv.FormatFloat(res.TargetP99MS, 'f', -1, 64) + " ms"}}
	var p50, p99 []XY
	for _, s := range res.Steps {
		p50 = append(p50, XY{float64(s.Viewers), s.TTFB.P50})
		p99 = append(p99, XY{float64(s.Viewers), s.TTFB.P99})
	}
	c.Series = []Series{{Name: "p50", Color: "#4e79a7", Points: p50}, {Name: "p99", Color: "#f28e2b", Width: 2.2, Points: p99}}
	return c
}

// WriteViewersSummary prints a plain-text table of res to w.
func WriteViewersSummary(w io.Writer, res *ViewersResults) error {
	fmt.Fprintf(w, "%s viewers → %s (%s): %dx%d at %d bit/s, %d segments of %.1f s (%.0f KiB); target p99 TTFB < %.0f ms, 0 errors\n",
		res.Tool, res.Target, res.Mode, res.Rung.Width, res.Rung.Height, res.Rung.Bandwidth, res.Rung.Segments, res.Rung.SegmentS,
		float64(res.Rung.Bytes)/1024, res.TargetP99MS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "viewers\tplaying\tsegments\terrors\tp50 ms\tp99 ms\tmax ms\tMiB/s\tlate\tgen CPU\tsrv CPU\tmachine\tsrv RSS MiB\tpass\t")
	for _, s := range res.Steps {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%s\t%s\t%.1f\t%d\t%s\t%s\t%s\t%s\t%v\t\n", s.Viewers, s.Playing, s.Segments, s.Errors,
			msCell(s.TTFB.P50), msCell(s.TTFB.P99), msCell(s.TTFB.Max), s.MiBps, s.Late,
			cores(s.GeneratorCPU), cores(s.ServerCPU), cores(s.MachineCPU), known(s.ServerRSSMiB, 0), s.Pass)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "most viewers with 0 errors and p99 TTFB < %.0f ms: %d (stopped: %s)\n", res.TargetP99MS, res.Best, res.StopReason)
	for _, s := range res.Steps {
		if s.Errors == 0 {
			continue
		}
		var parts []string
		for _, r := range s.Routes {
			if r.Errors > 0 {
				parts = append(parts, fmt.Sprintf("%s: %s", r.Name, statusSummary(r)))
			}
		}
		fmt.Fprintf(w, "errors at %d viewers: %s\n", s.Viewers, strings.Join(parts, "; "))
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

func cores(v float64) string {
	if v < 0 {
		return "?"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func known(v float64, prec int) string {
	if v < 0 {
		return "?"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}
