package loadtest

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sampleResults builds results the way a run does: from a recorder fed
// with known samples.
func sampleResults(t *testing.T) *Results {
	t.Helper()
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := NewRecorder(start, time.Second, 2)
	for i := range 300 {
		at := start.Add(time.Duration(i) * 20 * time.Millisecond) // six seconds
		rec.Record(i, Sample{Route: RouteFeed, Start: at, Latency: time.Duration(1+i%50) * time.Millisecond, Status: 200, Bytes: 512})
		if i%3 == 0 {
			rec.Record(i, Sample{Route: RouteStorage, Start: at, Latency: 2 * time.Millisecond, Status: 200})
		}
		if i%10 == 0 {
			rec.Record(i, Sample{Route: RouteUpload, Start: at, Latency: 120 * time.Millisecond, Status: 404})
		}
	}
	rec.Record(1, Sample{Route: RouteLogin, Start: start, Latency: 900 * time.Millisecond, Status: 200})
	stats := rec.Snapshot()
	res := &Results{
		Tool: "reel loadtest", Target: "http://127.0.0.1:8080", StartedAt: start,
		Users: 3, UsersReady: 3, DurationS: 5, Weights: DefaultWeights, ThinkMS: 10, TimeoutS: 60,
		SetupS: 1, LoadS: 5, BucketS: 1, StopReason: "duration",
		Skipped: map[string]int64{"play": 2}, Notes: []string{"route upload: every answer was 404 <not served>"},
		Client: ClientInfo{CPUs: 2, GoVersion: "go1.26", OS: "linux/amd64"},
	}
	for _, info := range Routes {
		if rs, ok := stats[info.Name]; ok {
			rr := rs.Result(info.Name, time.Second)
			res.Routes = append(res.Routes, rr)
			res.Totals.Requests += rr.Requests
			res.Totals.Errors += rr.Errors
		}
	}
	res.Totals.Throughput = float64(res.Totals.Requests) / 6
	return res
}

func TestResultsJSONRoundTrip(t *testing.T) {
	res := sampleResults(t)
	p := filepath.Join(t.TempDir(), "r.json")
	if err := res.WriteJSON(p); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res, back) {
		t.Fatalf("round trip changed the results\nwrote %+v\nread  %+v", res, back)
	}
	if back.Route(RouteFeed).Latency.P50 != 25 || back.Route(RouteFeed).Latency.P99 != 50 || back.Route(RouteUpload).Status[404] != 30 {
		t.Fatalf("feed %+v", back.Route(RouteFeed).Latency)
	}
	raw, _ := os.ReadFile(p)
	for _, want := range []string{`"latency_ms"`, `"p99"`, `"404": 30`, `"throughput_rps"`, `"series"`} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("results.json lacks %s", want)
		}
	}
	if _, err := ReadJSON(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("missing file read")
	}
}

var seriesRE = regexp.MustCompile(`<path class="series" data-series="([^"]*)"`)

func TestHTMLReport(t *testing.T) {
	res := sampleResults(t)
	var b bytes.Buffer
	if err := WriteHTML(&b, res); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	// Throughput (4 routes + total + errors), p99 overview (4), and one
	// chart per route with p50 and p99.
	svgs := strings.Count(html, "<svg ")
	if want := 2 + len(res.Routes); svgs != want {
		t.Fatalf("%d svg elements, want %d", svgs, want)
	}
	if got, want := len(seriesRE.FindAllString(html, -1)), (len(res.Routes)+2)+len(res.Routes)+2*len(res.Routes); got != want {
		t.Fatalf("%d series, want %d", got, want)
	}
	for _, want := range []string{"<table", "feed", "/api/v1/storage/me", "404×30", "&lt;not served&gt;", "read target 100 ms", "setup (register, log in)", "background:" + routeColor(RouteFeed)} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(html, "<script") || strings.Contains(html, "ZgotmplZ") || strings.Contains(html, "NaN") {
		t.Fatal("report has a script, a filtered value or a NaN")
	}
}

// Every chart is well-formed XML with the series it was given, so it also
// shows on its own (an <img> in Markdown).
func TestChartsAreStandaloneSVG(t *testing.T) {
	res := sampleResults(t)
	charts := Charts(res)
	check := func(c Chart, want []string) {
		t.Helper()
		svg := c.SVG()
		d := xml.NewDecoder(strings.NewReader(svg))
		for {
			if _, err := d.Token(); err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("%s: not XML: %v", c.Title, err)
				}
				break
			}
		}
		var got []string
		for _, m := range seriesRE.FindAllStringSubmatch(svg, -1) {
			got = append(got, m[1])
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: series %v, want %v", c.Title, got, want)
		}
		if !strings.Contains(svg, `xmlns="http://www.w3.org/2000/svg"`) {
			t.Fatal("no namespace")
		}
	}
	check(charts.Throughput, []string{"login", "feed", "storage", "upload", "total", "errors"})
	check(charts.P99, []string{"login", "feed", "storage", "upload"})
	for _, rc := range charts.Routes {
		check(rc.Chart, []string{"p50", "p99"})
	}
	// The throughput line of feed has a point per second: 300 requests
	// completing over 7 s, 50/s in the middle.
	var feed Series
	for _, s := range charts.Throughput.Series {
		if s.Name == "feed" {
			feed = s
		}
	}
	if len(feed.Points) != 7 || feed.Points[2].Y != 50 {
		t.Fatalf("feed throughput %+v", feed.Points)
	}

	dir := t.TempDir()
	files, err := WriteReport(dir, res)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4+len(res.Routes) {
		t.Fatalf("wrote %v", files)
	}
	for _, f := range []string{ResultsFile, ReportFile, ThroughputFile, P99File, RouteChartFile(RouteFeed)} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	var sum bytes.Buffer
	if err := WriteSummary(&sum, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"route", "feed", "p99 ms", "404×30", "total", "note: route upload", "play×2"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
}

func TestNiceStepAndLabels(t *testing.T) {
	for span, want := range map[float64]float64{60: 10, 7: 2, 1000: 200, 0.3: 0.05} {
		if got := niceStep(span, 6); got != want {
			t.Errorf("niceStep(%v) = %v, want %v", span, got, want)
		}
	}
	if tickLabel(0.1, "ms") != "0.1 ms" || tickLabel(1000, "ms") != "1 s" || tickLabel(2.5, "") != "2.5" {
		t.Fatal("labels")
	}
}
