package videos

import "github.com/reel-video/reel/internal/platform/queue"

// SetSpoolSpace replaces how the service reads the spool's free and total
// bytes.
func (s *Service) SetSpoolSpace(f func(dir string) (free, total uint64, err error)) { s.spoolSpace = f }

// Queue is the service's River client.
func (s *Service) Queue() *queue.Client { return s.jobs }

// WithoutPeriodicJobs leaves the periodic maintenance jobs out: tests run
// Maintain and Purge themselves, with their own clock.
func WithoutPeriodicJobs(c *Config) { c.noPeriodic = true }
