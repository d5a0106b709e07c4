package compat

import (
	"context"
	_ "embed"
	"net/http"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/storage"
)

// StorageOpenAPI describes the storage part of the compatibility surface,
// an OpenAPI 3.1 fragment for the storage module's document.
//
//go:embed openapi_storage.json
var StorageOpenAPI []byte

// StorageService is what the storage part needs of the storage service.
type StorageService interface {
	// Check returns a user's figures and records a CHECK_STORAGE event.
	Check(ctx context.Context, userID string) (storage.Usage, error)
}

// Storage serves the original storage management service's route.
type Storage struct {
	svc  StorageService
	auth auth
}

// NewStorage returns the storage part over svc; verifier checks access
// tokens.
func NewStorage(svc StorageService, verifier *authn.Verifier) *Storage {
	return &Storage{svc: svc, auth: auth{verifier}}
}

// Routes registers the route.
func (s *Storage) Routes(r httpx.Router) {
	r.Handle("GET /api/storage/usage", s.auth.require("Error fetching storage usage", s.usage))
}

// storageAnswer is the original's storage figures, in MiB.
type storageAnswer struct {
	TotalSizeMb  float64 `json:"totalSizeMb"`
	MaxStorageMb float64 `json:"maxStorageMb"`
	// UsagePercentage is a string with two decimals, as the original's
	// toFixed(2) made it.
	UsagePercentage string `json:"usagePercentage"`
}

func (s *Storage) usage(w http.ResponseWriter, r *http.Request, c authn.Caller) error {
	u, err := s.svc.Check(r.Context(), c.UserID)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, storageAnswer{
		TotalSizeMb:     round2(toMiB(u.UsedBytes)),
		MaxStorageMb:    quotaMiB(u.QuotaBytes),
		UsagePercentage: percentage(u.UsedBytes, u.QuotaBytes),
	})
	return nil
}
