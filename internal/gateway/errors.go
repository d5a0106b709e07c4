package gateway

import "github.com/reel-video/reel/internal/platform/errs"

var (
	errsUnavailable = errs.New(errs.Unavailable, "service_unavailable", "a reel service is unavailable, try again shortly")
	errNotRouted    = errs.New(errs.NotFound, "not_found", "not found")
)
