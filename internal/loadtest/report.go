package loadtest

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// The p99 targets drawn on the routes' charts: API reads, and the web
// app's server-rendered pages.
const (
	ReadTargetMS = 100
	PageTargetMS = 50
)

// targetMS is the p99 target of r, 0 when none applies.
func targetMS(r RouteResult) float64 {
	switch {
	case r.Page:
		return PageTargetMS
	case r.Read:
		return ReadTargetMS
	}
	return 0
}

// palette gives each route the same colour in every chart.
var palette = []string{"#4e79a7", "#f28e2b", "#9c755f", "#59a14f", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#17becf", "#1f77b4",
	"#e15759", "#8c564b", "#bcbd22", "#7f7f7f", "#aec7e8", "#98df8a", "#c5b0d5"}

func routeColor(name string) string {
	for i, r := range Routes {
		if r.Name == name {
			return palette[i%len(palette)]
		}
	}
	return "#777"
}

// Files written by WriteReport.
const (
	ResultsFile    = "results.json"
	ReportFile     = "report.html"
	ThroughputFile = "throughput.svg"
	P99File        = "latency-p99.svg"
)

// RouteChartFile is the file name of a route's latency chart.
func RouteChartFile(route string) string { return "latency-" + route + ".svg" }

// WriteReport writes results.json, report.html and the charts as SVG files
// into dir (created if missing) and returns the paths written.
func WriteReport(dir string, res *Results) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report dir: %w", err)
	}
	var written []string
	write := func(name string, data []byte) error {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		written = append(written, p)
		return nil
	}
	p := filepath.Join(dir, ResultsFile)
	if err := res.WriteJSON(p); err != nil {
		return nil, err
	}
	written = append(written, p)
	charts := Charts(res)
	if err := write(ThroughputFile, []byte(charts.Throughput.SVG())); err != nil {
		return nil, err
	}
	if err := write(P99File, []byte(charts.P99.SVG())); err != nil {
		return nil, err
	}
	for _, rc := range charts.Routes {
		if err := write(RouteChartFile(rc.Route), []byte(rc.Chart.SVG())); err != nil {
			return nil, err
		}
	}
	var html bytes.Buffer
	if err := WriteHTML(&html, res); err != nil {
		return nil, err
	}
	if err := write(ReportFile, html.Bytes()); err != nil {
		return nil, err
	}
	return written, nil
}

// ChartSet is every chart of a report.
type ChartSet struct {
	Throughput Chart
	P99        Chart
	Routes     []RouteChart
}

// RouteChart is one route's latency over time.
type RouteChart struct {
	Route string
	Chart Chart
}

// Charts builds the report's charts from results.
func Charts(res *Results) ChartSet {
	bucket := res.BucketS
	if bucket <= 0 {
		bucket = 1
	}
	end := res.SetupS + res.LoadS
	for _, r := range res.Routes {
		if n := len(r.Series); n > 0 {
			end = max(end, r.Series[n-1].T+bucket)
		}
	}
	band := &Band{From: 0, To: res.SetupS, Label: "setup (register, log in)"}
	if res.SetupS <= 0 {
		band = nil
	}
	slots := int(math.Ceil(end/bucket - 1e-9))

	// Throughput: every slot drawn, zero included, so that a stall shows
	// as a drop rather than a line bridging it.
	tp := Chart{Title: "Throughput (requests/s, answered)", XLabel: "seconds since start", YLabel: "requests/s",
		Width: 900, Height: 300, XMax: end, Band: band}
	totals := make([]float64, slots)
	errs := make([]float64, slots)
	for _, r := range res.Routes {
		ys := make([]float64, slots)
		for _, p := range r.Series {
			if i := int(math.Round(p.T / bucket)); i >= 0 && i < slots {
				ys[i] += float64(p.Requests) / bucket
				totals[i] += float64(p.Requests) / bucket
				errs[i] += float64(p.Errors) / bucket
			}
		}
		tp.Series = append(tp.Series, Series{Name: r.Name, Color: routeColor(r.Name), Points: slotPoints(ys, bucket)})
	}
	tp.Series = append(tp.Series, Series{Name: "total", Color: "#222", Width: 2.2, Points: slotPoints(totals, bucket)})
	if res.Totals.Errors > 0 {
		tp.Series = append(tp.Series, Series{Name: "errors", Color: "#d62728", Dashed: true, Width: 2, Points: slotPoints(errs, bucket)})
	}

	p99 := Chart{Title: "Latency p99 by route (log scale)", XLabel: "seconds since start", YLabel: "p99 latency", YUnit: "ms",
		LogY: true, Width: 900, Height: 320, XMax: end, Band: band,
		Target: &Target{Y: ReadTargetMS, Label: "read target 100 ms"}}
	var routes []RouteChart
	for _, r := range res.Routes {
		p99.Series = append(p99.Series, Series{Name: r.Name, Color: routeColor(r.Name), Points: gapPoints(r.Series, bucket, func(p Point) float64 { return p.P99 })})
		c := Chart{Title: fmt.Sprintf("%s — %s %s", r.Name, r.Method, r.Path), XLabel: "seconds since start", YLabel: "latency", YUnit: "ms",
			LogY: true, Width: 440, Height: 220, XMax: end, Band: band}
		if t := targetMS(r); t > 0 {
			c.Target = &Target{Y: t, Label: strconv.FormatFloat(t, 'f', 0, 64) + " ms"}
		}
		c.Series = []Series{
			{Name: "p50", Color: "#4e79a7", Points: gapPoints(r.Series, bucket, func(p Point) float64 { return p.P50 })},
			{Name: "p99", Color: "#f28e2b", Points: gapPoints(r.Series, bucket, func(p Point) float64 { return p.P99 })},
		}
		routes = append(routes, RouteChart{Route: r.Name, Chart: c})
	}
	return ChartSet{Throughput: tp, P99: p99, Routes: routes}
}

// slotPoints places one value per slot at the slot's middle.
func slotPoints(ys []float64, bucket float64) []XY {
	out := make([]XY, len(ys))
	for i, y := range ys {
		out[i] = XY{X: (float64(i) + 0.5) * bucket, Y: y}
	}
	return out
}

// gapPoints maps a route's series to points, breaking the line where a
// slot had no answers (a latency of "nothing" is not zero).
func gapPoints(ps []Point, bucket float64, y func(Point) float64) []XY {
	var out []XY
	for i, p := range ps {
		if i > 0 && p.T-ps[i-1].T > bucket*1.5 {
			out = append(out, XY{X: p.T, Y: math.NaN()})
		}
		v := y(p)
		if p.Requests == p.Errors && v == 0 {
			v = math.NaN() // only transport errors: no latency to show
		}
		out = append(out, XY{X: p.T + bucket/2, Y: v})
	}
	return out
}

// statusSummary formats a route's answers by status and transport error:
// "200×1520 404×3 timeout×1".
func statusSummary(r RouteResult) string {
	codes := make([]int, 0, len(r.Status))
	for c := range r.Status {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", c, r.Status[c]))
	}
	kinds := make([]string, 0, len(r.Transport))
	for k := range r.Transport {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s×%d", k, r.Transport[k]))
	}
	if r.Gone > 0 {
		parts = append(parts, fmt.Sprintf("(%d gone: deleted by their owner, not errors)", r.Gone))
	}
	return strings.Join(parts, " ")
}

// WriteSummary prints a plain-text table of res to w.
func WriteSummary(w io.Writer, res *Results) error {
	fmt.Fprintf(w, "%s → %s: %d users (%d ready), setup %.1f s, load %.1f s, stopped by %s\n",
		res.Tool, res.Target, res.Users, res.UsersReady, res.SetupS, res.LoadS, res.StopReason)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "route       \trequests\terrors\treq/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\t\tstatuses")
	for _, r := range res.Routes {
		fmt.Fprintf(tw, "%-12s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t\t%s\n", r.Name, r.Requests, r.Errors, r.Throughput,
			msCell(r.Latency.P50), msCell(r.Latency.P90), msCell(r.Latency.P99), msCell(r.Latency.Max), statusSummary(r))
	}
	fmt.Fprintf(tw, "%-12s\t%d\t%d\t%.1f\t\t\t\t\t\t\n", "total", res.Totals.Requests, res.Totals.Errors, res.Totals.Throughput)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Skipped) > 0 {
		keys := make([]string, 0, len(res.Skipped))
		for k := range res.Skipped {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s×%d", k, res.Skipped[k]))
		}
		fmt.Fprintf(w, "skipped (nothing to act on yet): %s\n", strings.Join(parts, " "))
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

func msCell(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// WriteHTML writes a self-contained HTML report: the charts inlined as SVG,
// a latency table, the notes. No script and nothing fetched.
func WriteHTML(w io.Writer, res *Results) error {
	charts := Charts(res)
	type row struct {
		RouteResult
		Color, Statuses, P50, P90, P99, Max, Mean, MiB string
		ErrPct                                         string
		P99Bad, P99Good                                bool
	}
	var rows []row
	for _, r := range res.Routes {
		pct := 0.0
		if r.Requests > 0 {
			pct = 100 * float64(r.Errors) / float64(r.Requests)
		}
		rows = append(rows, row{
			RouteResult: r, Color: routeColor(r.Name), Statuses: statusSummary(r),
			P50: msCell(r.Latency.P50), P90: msCell(r.Latency.P90), P99: msCell(r.Latency.P99),
			Max: msCell(r.Latency.Max), Mean: msCell(r.Latency.Mean),
			MiB:     strconv.FormatFloat(float64(r.Bytes)/(1<<20), 'f', 1, 64),
			ErrPct:  strconv.FormatFloat(pct, 'f', 2, 64),
			P99Bad:  targetMS(r) > 0 && r.Latency.P99 >= targetMS(r),
			P99Good: targetMS(r) > 0 && r.Latency.P99 < targetMS(r) && r.Requests > 0,
		})
	}
	var routeSVG []template.HTML
	for _, rc := range charts.Routes {
		routeSVG = append(routeSVG, template.HTML(rc.Chart.SVG())) //nolint:gosec // built by Chart.SVG, which escapes every text
	}
	return reportTmpl.Execute(w, map[string]any{
		"R":          res,
		"Rows":       rows,
		"Throughput": template.HTML(charts.Throughput.SVG()), //nolint:gosec // as above
		"P99":        template.HTML(charts.P99.SVG()),        //nolint:gosec // as above
		"RouteSVG":   routeSVG,
	})
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"f1": func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>reel load test — {{.R.Users}} users against {{.R.Target}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;margin:24px auto;max-width:1000px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#555}.kpis{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.kpi{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:120px}.kpi b{display:block;font-size:20px}
.notes{background:#fff8e1;border:1px solid #f0d68a;border-radius:6px;padding:8px 14px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:8px}
svg{max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{padding:4px 8px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child,td.l{text-align:left}td.bad{background:#fde2e1;color:#a00}td.good{background:#e3f6e5;color:#175c22}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
code{font-size:12px;color:#555}
</style></head><body>
<h1>reel load test</h1>
<div class="meta">{{.R.Target}} · started {{.R.StartedAt.Format "2006-01-02 15:04:05 UTC"}} · weights <code>{{.R.Weights}}</code> · think {{f1 .R.ThinkMS}} ms · client {{.R.Client.CPUs}} CPUs, {{.R.Client.GoVersion}}</div>
<div class="kpis">
<div class="kpi">users<b>{{.R.UsersReady}} / {{.R.Users}}</b></div>
<div class="kpi">setup<b>{{f1 .R.SetupS}} s</b></div>
<div class="kpi">load<b>{{f1 .R.LoadS}} s</b></div>
<div class="kpi">requests<b>{{.R.Totals.Requests}}</b></div>
<div class="kpi">errors<b>{{.R.Totals.Errors}}</b></div>
<div class="kpi">throughput<b>{{f1 .R.Totals.Throughput}}/s</b></div>
<div class="kpi">stopped by<b>{{.R.StopReason}}</b></div>
</div>
{{if .R.Notes}}<div class="notes"><b>Notes</b><ul>{{range .R.Notes}}<li>{{.}}</li>{{end}}</ul></div>{{end}}
<h2>Throughput</h2>
{{.Throughput}}
<h2>Latency p99</h2>
{{.P99}}
<h2>Latency by route</h2>
<p class="meta">Time to the last byte of the answer, p50 and p99 per {{f1 .R.BucketS}} s; the dashed red line is the p99 target: 100 ms for the API's reads, 50 ms for the web app's pages.</p>
<div class="grid">{{range .RouteSVG}}<div>{{.}}</div>{{end}}</div>
<h2>Latency table</h2>
<table><thead><tr><th>route</th><th class="l">request</th><th>requests</th><th>errors</th><th>error %</th><th>req/s</th><th>mean ms</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th><th>MiB in</th><th class="l">answers</th></tr></thead><tbody>
{{range .Rows}}<tr><td><span class="sw" style="background:{{.Color}}"></span>{{.Name}}</td><td class="l"><code>{{.Method}} {{.Path}}</code></td><td>{{.Requests}}</td><td{{if .Errors}} class="bad"{{end}}>{{.Errors}}</td><td>{{.ErrPct}}</td><td>{{f1 .Throughput}}</td><td>{{.Mean}}</td><td>{{.P50}}</td><td>{{.P90}}</td><td{{if .P99Bad}} class="bad"{{else if .P99Good}} class="good"{{end}}>{{.P99}}</td><td>{{.Max}}</td><td>{{.MiB}}</td><td class="l"><code>{{.Statuses}}</code></td></tr>
{{end}}</tbody></table>
{{if .R.Skipped}}<p class="meta">Skipped for want of a video to act on: {{range $k, $v := .R.Skipped}}{{$k}} ×{{$v}} {{end}}</p>{{end}}
<p class="meta">Req/s is over the span the route was in use. Latency counts every answer, whatever its status; requests without an answer count as errors only. Generated by <code>reel loadtest</code>.</p>
</body></html>
`))
