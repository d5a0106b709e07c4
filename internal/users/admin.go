package users

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// List pages through all users, newest first.
func (s *Service) List(ctx context.Context, req page.Request) (page.Page[User], error) {
	return s.listUsers(ctx, "", req)
}

// listUsers pages through the users whose email or username contains
// contains (lower case; all when empty).
func (s *Service) listUsers(ctx context.Context, contains string, req page.Request) (page.Page[User], error) {
	items, err := s.store.listUsers(ctx, contains, req)
	if err != nil {
		return page.Page[User]{}, err
	}
	return page.Make(items, req.Limit, func(u User) page.Cursor {
		return page.Cursor{T: micros(u.CreatedAt), ID: u.ID}
	}), nil
}

// AdminUpdate is an admin's change to an account.
type AdminUpdate struct {
	Role     *string
	Disabled *bool
	Limits   Limits
}

// MaxLimitBytes is the largest quota or daily limit an admin may set: the
// largest byte count the storage and usage services accept (1 PiB).
const MaxLimitBytes = int64(1) << 50

// Update applies an admin's change. Disabling an account revokes its
// refresh tokens; the last enabled admin cannot lock everyone out.
func (s *Service) Update(ctx context.Context, id string, in AdminUpdate) (User, error) {
	if _, err := uuid.Parse(id); err != nil {
		return User{}, ErrUserNotFound
	}
	fields := map[string]string{}
	if in.Role != nil && *in.Role != authn.RoleUser && *in.Role != authn.RoleAdmin {
		fields["role"] = "must be user or admin"
	}
	for name, v := range map[string]*int64{"storage_quota_bytes": in.Limits.StorageQuota, "daily_upload_limit_bytes": in.Limits.DailyUpload, "daily_egress_limit_bytes": in.Limits.DailyEgress} {
		// Checked here, against the bound storage and usage apply, so that
		// a value they would refuse fails the whole update before any part
		// of it is applied.
		if v != nil && (*v < -1 || *v > MaxLimitBytes) {
			fields[name] = "must be a byte count up to 1 PiB, or -1 for unlimited"
		}
	}
	if len(fields) > 0 {
		return User{}, ErrValidation.WithFields(fields)
	}
	hasLimits := in.Limits.StorageQuota != nil || in.Limits.DailyUpload != nil || in.Limits.DailyEgress != nil
	if hasLimits && s.limits == nil {
		return User{}, ErrLimitsNotConfigured
	}
	if hasLimits {
		// The overrides live in other services, out of this transaction's
		// reach. They go first, after a read-only run of the checks the
		// transaction makes, so that an unknown account or a refused change
		// applies nothing, and a failure of storage or usage leaves the
		// account as it was (the request can simply be repeated). Only a
		// change that races this one between the two can still fail the
		// transaction after the overrides are set.
		if _, err := s.applyUpdate(ctx, s.db.R, id, in); err != nil {
			return User{}, fmt.Errorf("update user: %w", err)
		}
		if err := s.limits.SetLimits(ctx, id, in.Limits); err != nil {
			return User{}, fmt.Errorf("update user limits: %w", err)
		}
	}
	var out User
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		u, err := s.applyUpdate(ctx, tx, id, in)
		if err != nil {
			return err
		}
		if u.Disabled {
			if err := s.store.revokeUserTokens(ctx, tx, u.ID, micros(s.now())); err != nil {
				return err
			}
			if err := s.store.cutTokens(ctx, tx, u.ID, micros(s.now())); err != nil {
				return err
			}
		}
		u.UpdatedAt = s.now().UTC()
		out = u.User
		if err := s.store.updateUser(ctx, tx, u); err != nil {
			return err
		}
		e := s.event(ctx, "UPDATE_USER", outbox.Success, "admin updated account "+u.Email).On(u.ID).
			With("role", u.Role).With("disabled", u.Disabled)
		for k, v := range map[string]*int64{"storage_quota_bytes": in.Limits.StorageQuota, "daily_upload_limit_bytes": in.Limits.DailyUpload, "daily_egress_limit_bytes": in.Limits.DailyEgress} {
			if v != nil {
				e = e.With(k, *v)
			}
		}
		return s.events.Add(ctx, tx, e)
	})
	if err != nil {
		return User{}, fmt.Errorf("update user: %w", err)
	}
	if s.standingChanged != nil {
		s.standingChanged(out.ID)
	}
	return out, nil
}

// applyUpdate reads the account and applies in's role and disabled flag
// to it in memory, refusing a change that would leave no enabled admin.
func (s *Service) applyUpdate(ctx context.Context, q sqldb.Querier, id string, in AdminUpdate) (userRow, error) {
	u, err := s.store.userByID(ctx, q, id)
	if err != nil {
		return userRow{}, err
	}
	wasActiveAdmin := u.Role == authn.RoleAdmin && !u.Disabled
	if in.Role != nil {
		u.Role = *in.Role
	}
	if in.Disabled != nil {
		u.Disabled = *in.Disabled
	}
	if wasActiveAdmin && (u.Role != authn.RoleAdmin || u.Disabled) {
		var n int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = FALSE AND id <> $1`, id).Scan(&n); err != nil {
			return userRow{}, fmt.Errorf("count admins: %w", err)
		}
		if n == 0 {
			return userRow{}, ErrLastAdmin
		}
	}
	return u, nil
}
