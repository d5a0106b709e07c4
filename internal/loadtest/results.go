package loadtest

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Results is what a run measured, as written to results.json. Latencies are
// in milliseconds and times in seconds since the run started, so that the
// file reads without a tool.
type Results struct {
	Tool      string    `json:"tool"`
	Target    string    `json:"target"`
	StartedAt time.Time `json:"started_at"`
	// What was asked.
	Users       int     `json:"users"`
	DurationS   float64 `json:"duration_s"`
	RequestsCap int64   `json:"requests_cap,omitempty"`
	Weights     string  `json:"weights"`
	ThinkMS     float64 `json:"think_ms"`
	RampS       float64 `json:"ramp_s,omitempty"`
	TimeoutS    float64 `json:"timeout_s"`
	// What happened. The setup phase (register and log in every user)
	// runs from 0 to SetupS; the load phase follows for LoadS seconds.
	UsersReady int     `json:"users_ready"`
	SetupS     float64 `json:"setup_s"`
	LoadS      float64 `json:"load_s"`
	BucketS    float64 `json:"bucket_s"`
	StopReason string  `json:"stop_reason"`
	Totals     Totals  `json:"totals"`
	// Routes in a fixed order (setup, reads, writes, media, admin), each
	// present once it was requested at least once.
	Routes []RouteResult `json:"routes"`
	// Skipped counts actions a user picked but could not do (no video to
	// play or delete yet).
	Skipped map[string]int64 `json:"skipped,omitempty"`
	// Notes are things a reader must know to trust the figures.
	Notes []string `json:"notes,omitempty"`
	// Client describes the machine the load came from.
	Client ClientInfo `json:"client"`
}

// ClientInfo describes the load generator's side.
type ClientInfo struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
}

// Totals sums every route.
type Totals struct {
	Requests   uint64  `json:"requests"`
	Errors     uint64  `json:"errors"`
	Canceled   uint64  `json:"canceled,omitempty"`
	Throughput float64 `json:"throughput_rps"` // over setup and load together
}

// RouteResult is one route's figures.
type RouteResult struct {
	Name   string `json:"name"`
	Method string `json:"method"`
	Path   string `json:"path"`
	// Read routes carry the 100 ms p99 target, pages (server-rendered
	// HTML) the 50 ms one.
	Read     bool   `json:"read"`
	Page     bool   `json:"page,omitempty"`
	Requests uint64 `json:"requests"`
	OK       uint64 `json:"ok"` // the right answers: 2xx, or a form's 303
	Errors   uint64 `json:"errors"`
	// Canceled requests were cut short by an interrupted run; they count
	// neither as requests nor as errors.
	Canceled uint64 `json:"canceled,omitempty"`
	// Gone counts 404s for a video its owner deleted after the user saw
	// it in the feed (a problem+json 404 from playback or media): the
	// right answer, in Status but not in Errors.
	Gone uint64 `json:"gone,omitempty"`
	// Status counts answers by HTTP status; Transport counts requests that
	// got no answer, by kind (timeout, refused, reset, …), with one
	// example message per kind in ErrorSamples.
	Status       map[int]uint64    `json:"status"`
	Transport    map[string]uint64 `json:"transport,omitempty"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	// Bytes is the response body bytes received.
	Bytes int64 `json:"bytes"`
	// Throughput is requests per second over the span in which the route
	// was in use (its first request to its last answer, at least 1 s).
	Throughput float64 `json:"throughput_rps"`
	// Latency is time to the last byte of the answer, over every answer
	// (any status; requests without an answer are not in it).
	Latency Latency `json:"latency_ms"`
	// Series is the route over time, one point per bucket with requests.
	Series []Point `json:"series"`
}

// Latency summarises a latency distribution in milliseconds.
type Latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// Point is one bucket of a route's time series.
type Point struct {
	T        float64 `json:"t"` // bucket start, seconds since the run started
	Requests uint64  `json:"n"`
	Errors   uint64  `json:"errors"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
}

// Route returns the route named name, or nil.
func (r *Results) Route(name string) *RouteResult {
	for i := range r.Routes {
		if r.Routes[i].Name == name {
			return &r.Routes[i]
		}
	}
	return nil
}

// WriteJSON writes r, indented, to path.
func (r *Results) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// ReadJSON reads results written by WriteJSON.
func ReadJSON(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode results %s: %w", path, err)
	}
	return &r, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
