package logs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/logs"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// BenchmarkIngest measures ingest throughput in batches of 500 realistic
// events (as a relay delivers them), into a table that keeps growing, on
// both engines. Run with:
//
//	go test ./internal/logs -run '^$' -bench Ingest -benchtime 200x
func BenchmarkIngest(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		// One relay delivering batch after batch, then four at once (the
		// relays of several services or replicas; each waits for its own
		// transaction, so they overlap on the database).
		for _, relays := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/relays=%d", engine, relays), func(b *testing.B) { benchIngest(b, engine, relays) })
		}
	}
}

func benchIngest(b *testing.B, engine string, relays int) {
	const batch = 500
	{
		{
			var url string
			if engine == "sqlite" {
				url = sqldbtest.SQLiteURL(b)
			} else {
				url = sqldbtest.PostgresURL(b)
			}
			db := sqldbtest.OpenURL(b, url, logs.Migrations(), logs.MigrationTable)
			svc := logs.New(db, obs.Discard())
			users := make([]string, 200)
			for i := range users {
				users[i] = uuid.NewString()
			}
			actions := []string{"LOGIN", "STREAM_VIDEO", "FETCH_VIDEOS", "UPLOAD_VIDEO", "TOKEN_REFRESH"}
			// Batches are built before the clock starts: only ingest is timed.
			batches := make([][]outbox.Event, b.N)
			at := time.Now().Add(-time.Hour)
			for i := range batches {
				evs := make([]outbox.Event, batch)
				for j := range evs {
					n := i*batch + j
					e := ev(users[n%len(users)], actions[n%len(actions)], outbox.Success,
						fmt.Sprintf("streamed video %d to the viewer", n), at.Add(time.Duration(n)*time.Microsecond))
					e.UserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
					evs[j] = e.On(uuid.NewString()).With("bytes", n*1024).With("range", "bytes=0-")
				}
				batches[i] = evs
			}
			ctx := context.Background()
			next := make(chan []outbox.Event, len(batches))
			for _, evs := range batches {
				next <- evs
			}
			close(next)
			errc := make(chan error, relays)
			b.ResetTimer()
			for range relays {
				go func() {
					for evs := range next {
						if err := svc.Ingest(ctx, evs); err != nil {
							errc <- err
							return
						}
					}
					errc <- nil
				}()
			}
			for range relays {
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		}
	}
}
