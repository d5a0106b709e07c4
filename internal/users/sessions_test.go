package users_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/page"
	"github.com/reel-video/reel/internal/users"
)

func TestHasAdmin(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		if ok, err := e.svc.HasAdmin(ctx); err != nil || ok {
			t.Fatalf("empty database: %v %v", ok, err)
		}
		e.account("plain@example.com")
		if ok, _ := e.svc.HasAdmin(ctx); ok {
			t.Fatal("a plain user counted as an admin")
		}
		if _, err := e.svc.Register(ctx, users.RegisterInput{Email: "boss@example.com", Password: "correct horse", Username: "boss", Admin: true}); err != nil {
			t.Fatal(err)
		}
		if ok, err := e.svc.HasAdmin(ctx); err != nil || !ok {
			t.Fatalf("with an admin: %v %v", ok, err)
		}
	})
}

func TestSessions(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		a := e.account("sam@example.com")
		uid := a.body["user"].(map[string]any)["id"].(string)
		e.advance(time.Minute)
		b := e.login("sam@example.com", "correct horse")
		e.advance(time.Minute)
		c := e.login("sam@example.com", "correct horse")
		other := e.account("tom@example.com")

		list, err := e.svc.Sessions(ctx, uid)
		if err != nil || len(list) != 3 {
			t.Fatalf("sessions: %v %+v", err, list)
		}
		if !list[0].LastUsedAt.After(list[2].LastUsedAt) {
			t.Fatalf("not most recent first: %+v", list)
		}
		// A refresh keeps the session (same family), with a later last use
		// and the same start.
		e.advance(time.Minute)
		rb := e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": b.str("refresh_token")})
		expect(t, rb, 200, "")
		list, _ = e.svc.Sessions(ctx, uid)
		if len(list) != 3 || !list[0].LastUsedAt.After(list[0].StartedAt) || list[0].StartedAt != list[2].StartedAt.Add(time.Minute) {
			t.Fatalf("after refresh: %+v", list)
		}
		bFamily := list[0].ID
		// An access token names its session (sid), so a page can tell
		// which one it is.
		var claims authn.Claims
		if _, _, err := jwt.NewParser().ParseUnverified(rb.str("access_token"), &claims); err != nil || claims.SessionID != bFamily {
			t.Fatalf("sid %q, want %q (%v)", claims.SessionID, bFamily, err)
		}

		// Someone else's session cannot be revoked, nor a made-up one.
		otherID := other.body["user"].(map[string]any)["id"].(string)
		if err := e.svc.RevokeSession(ctx, otherID, bFamily); !errors.Is(err, users.ErrSessionNotFound) {
			t.Fatalf("other user's session: %v", err)
		}
		if err := e.svc.RevokeSession(ctx, uid, "nonsense\x00"); !errors.Is(err, users.ErrSessionNotFound) {
			t.Fatalf("bad id: %v", err)
		}
		if err := e.svc.RevokeSession(ctx, uid, bFamily); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.RevokeSession(ctx, uid, bFamily); !errors.Is(err, users.ErrSessionNotFound) {
			t.Fatalf("twice: %v", err)
		}
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": rb.str("refresh_token")}), 401, "invalid_refresh_token")
		if list, _ = e.svc.Sessions(ctx, uid); len(list) != 2 {
			t.Fatalf("after revoking one: %+v", list)
		}

		// Revoking the others keeps the one presented.
		if _, err := e.svc.RevokeOtherSessions(ctx, otherID, c.str("refresh_token")); !errors.Is(err, users.ErrInvalidRefresh) {
			t.Fatalf("someone else's token: %v", err)
		}
		n, err := e.svc.RevokeOtherSessions(ctx, uid, c.str("refresh_token"))
		if err != nil || n != 1 {
			t.Fatalf("revoke others: %d %v", n, err)
		}
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": a.str("refresh_token")}), 401, "invalid_refresh_token")
		rc := e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": c.str("refresh_token")})
		expect(t, rc, 200, "")
		// The rotated token no longer names a live session.
		if _, err := e.svc.RevokeOtherSessions(ctx, uid, c.str("refresh_token")); !errors.Is(err, users.ErrInvalidRefresh) {
			t.Fatalf("used token: %v", err)
		}
		if n, err := e.svc.RevokeOtherSessions(ctx, uid, rc.str("refresh_token")); err != nil || n != 0 {
			t.Fatalf("nothing left to revoke: %d %v", n, err)
		}
		// The other user's session was untouched.
		expect(t, e.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": other.str("refresh_token")}), 200, "")
		if got := len(e.events("LOGOUT", "success")); got != 2 {
			t.Fatalf("%d LOGOUT events, want 2", got)
		}
	})
}

func TestSearchUsers(t *testing.T) {
	withEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for _, u := range []struct{ email, name string }{
			{"ann@example.com", "Ann Lee"}, {"bob@example.org", "bob_the_builder"}, {"cy@example.com", "100% Cy"},
		} {
			expect(t, e.register(u.email, "correct horse", u.name), 201, "")
		}
		req := page.Request{Limit: 10}
		for q, want := range map[string]int{"": 3, "EXAMPLE.COM": 2, "ann": 1, "lee": 1, "_": 1, "%": 1, "a_n": 0, "nobody": 0} {
			p, err := e.svc.Search(ctx, q, req)
			if err != nil || len(p.Items) != want {
				t.Fatalf("search %q: %d items, want %d (%v)", q, len(p.Items), want, err)
			}
		}
		// Paging through matches.
		p, err := e.svc.Search(ctx, "example", page.Request{Limit: 2})
		if err != nil || len(p.Items) != 2 || p.NextCursor == nil {
			t.Fatalf("first page: %+v %v", p, err)
		}
		after, _ := page.Decode(*p.NextCursor)
		p, err = e.svc.Search(ctx, "example", page.Request{After: after, Limit: 2})
		if err != nil || len(p.Items) != 1 || p.NextCursor != nil || p.Items[0].Email != "ann@example.com" {
			t.Fatalf("second page: %+v %v", p, err)
		}
		if _, err := e.svc.Search(ctx, "bad\x00", req); errs.KindOf(err) != errs.Validation {
			t.Fatalf("control character: %v", err)
		}
	})
}
