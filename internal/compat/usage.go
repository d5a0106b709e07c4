package compat

import (
	"context"
	_ "embed"
	"net/http"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/usage"
)

// UsageOpenAPI describes the usage part of the compatibility surface, an
// OpenAPI 3.1 fragment for the usage module's document.
//
//go:embed openapi_usage.json
var UsageOpenAPI []byte

// UsageService is what the usage part needs of the usage service.
type UsageService interface {
	// Check returns a user's counters for today and records a
	// CHECK_BANDWIDTH event.
	Check(ctx context.Context, userID string) (usage.Status, error)
}

// Usage serves the original usage monitoring service's route.
type Usage struct {
	svc  UsageService
	auth auth
}

// NewUsage returns the usage part over svc; verifier checks access tokens.
func NewUsage(svc UsageService, verifier *authn.Verifier) *Usage {
	return &Usage{svc: svc, auth: auth{verifier}}
}

// Routes registers the route.
func (u *Usage) Routes(r httpx.Router) {
	r.Handle("GET /api/usage/daily-usage", u.auth.require("Error fetching daily bandwidth usage", u.daily))
}

// The original's daily usage messages.
const (
	msgLimitExceeded = "Daily bandwidth limit exceeded. No further uploads allowed."
	msgWithinLimit   = "Bandwidth usage is within the daily limit."
)

// dailyAnswer is the original's daily figures, in MiB. Its "bandwidth" is
// the volume uploaded today (UTC), which is reel's upload counter; what
// viewers stream is reel's egress, which the original did not measure.
type dailyAnswer struct {
	TotalUsageMb        float64 `json:"totalUsageMb"`
	DailyLimitMb        float64 `json:"dailyLimitMb"`
	IsThresholdExceeded bool    `json:"isThresholdExceeded"`
	Message             string  `json:"message"`
}

func (u *Usage) daily(w http.ResponseWriter, r *http.Request, c authn.Caller) error {
	st, err := u.svc.Check(r.Context(), c.UserID)
	if err != nil {
		return err
	}
	used, limit := st.Upload.UsedBytes, st.Upload.LimitBytes
	// Reached counts as exceeded: reel refuses any further upload once the
	// volume is used up, which is what the message tells.
	exceeded := limit >= 0 && used >= limit
	a := dailyAnswer{TotalUsageMb: round2(toMiB(used)), DailyLimitMb: quotaMiB(limit), IsThresholdExceeded: exceeded, Message: msgWithinLimit}
	if exceeded {
		a.Message = msgLimitExceeded
	}
	httpx.JSON(w, http.StatusOK, a)
	return nil
}
