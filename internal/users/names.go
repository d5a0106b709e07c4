package users

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/errs"
)

// MaxNames bounds one Names lookup: a page of videos has at most 100
// owners.
const MaxNames = 100

// ErrTooManyNames refuses a Names lookup of more than MaxNames ids.
var ErrTooManyNames = errs.New(errs.Invalid, "too_many_ids", fmt.Sprintf("at most %d ids may be looked up at once", MaxNames))

// ErrAdminExists refuses the first-run creation of an admin once one
// exists.
var ErrAdminExists = errs.New(errs.Conflict, "admin_exists", "an admin account exists already")

// Names returns the usernames of the accounts among ids, by id, for the
// web app's lists (a video's owner). Ids that are not accounts are left
// out; a username is what every signed-in user sees next to a video.
func (s *Service) Names(ctx context.Context, ids []string) (map[string]string, error) {
	if len(ids) > MaxNames {
		return nil, ErrTooManyNames
	}
	var valid []string
	seen := map[string]bool{}
	for _, id := range ids {
		if u, err := uuid.Parse(id); err == nil && u.String() == id && !seen[id] {
			seen[id] = true
			valid = append(valid, id)
		}
	}
	if len(valid) == 0 {
		return map[string]string{}, nil
	}
	return s.store.names(ctx, valid)
}

func (s *Store) names(ctx context.Context, ids []string) (map[string]string, error) {
	args := make([]any, len(ids))
	marks := make([]string, len(ids))
	for i, id := range ids {
		args[i], marks[i] = id, fmt.Sprintf("$%d", i+1)
	}
	rows, err := s.db.R.QueryContext(ctx, `SELECT id, username FROM users WHERE id IN (`+strings.Join(marks, ", ")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("user names: %w", err)
	}
	defer rows.Close()
	out := make(map[string]string, len(ids))
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("user names: %w", err)
		}
		out[id] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("user names: %w", err)
	}
	return out, nil
}

// CreateFirstAdmin creates an admin account while none exists: the web
// app's first-run setup. Once one does it is ErrAdminExists; admins made
// later are promoted by an admin.
func (s *Service) CreateFirstAdmin(ctx context.Context, in RegisterInput) (User, error) {
	ok, err := s.HasAdmin(ctx)
	if err != nil {
		return User{}, fmt.Errorf("create first admin: %w", err)
	}
	if ok {
		return User{}, ErrAdminExists
	}
	in.Admin = true
	return s.Register(ctx, in)
}
