package app_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/google/uuid"
)

// authzTable is who may call each documented route, from API.md, not from
// what the server happens to answer: the status each principal gets, in
// the order anonymous, user (owner of what the path names), other (owner
// of a different resource), admin, disabled, expired, demoted.
//
// A route that passes the check but names something the caller may not
// touch answers as its OpenAPI document says: 404 on the v1 API (another
// user's video, upload or session is not found), 403 where the original
// system's answer is kept.
var authzTable = map[string]row{
	// Operations: anyone, a bad token changes nothing.
	"GET /healthz":               {want: everyone(200)},
	"GET /readyz":                {want: everyone(200)},
	"GET /metrics":               {want: everyone(200)},
	"GET /api/openapi.json":      {want: everyone(200)},
	"GET /.well-known/jwks.json": {want: everyone(200)},

	// Users and auth.
	"POST /api/v1/auth/register": {want: everyone(201), body: func(w *world, _ who) ([]byte, map[string]string) {
		return jsonBody(map[string]string{"email": w.unique(), "password": matrixPassword, "username": "new"}), nil
	}},
	"POST /api/v1/auth/login": {want: everyone(200), body: func(w *world, _ who) ([]byte, map[string]string) {
		return jsonBody(map[string]string{"email": w.email[user], "password": matrixPassword}), nil
	}},
	"POST /api/v1/auth/refresh": {want: everyone(200), body: func(w *world, p who) ([]byte, map[string]string) {
		return jsonBody(map[string]string{"refresh_token": w.session(p).Refresh}), nil
	}},
	"POST /api/v1/auth/logout": {want: bearer(204), body: func(w *world, p who) ([]byte, map[string]string) {
		return jsonBody(map[string]string{"refresh_token": w.session(p).Refresh}), nil
	}},
	"GET /api/v1/users/me": {want: bearer(200)},
	"PATCH /api/v1/users/me": {want: bearer(200), body: func(*world, who) ([]byte, map[string]string) {
		return []byte(`{"username":"renamed"}`), nil
	}},
	"GET /api/v1/users/me/sessions": {want: bearer(200)},
	// The id is a session of user's: the others' "me" has no such session.
	"DELETE /api/v1/users/me/sessions/{id}": {want: want(401, 204, 404, 404, 401, 401, 404), params: func(w *world, _ who) map[string]string {
		return map[string]string{"id": sessionID(w, w.session(user).Access)}
	}},
	"POST /api/v1/users/me/sessions/revoke-others": {want: bearer(200), body: func(w *world, p who) ([]byte, map[string]string) {
		return jsonBody(map[string]string{"refresh_token": w.session(p).Refresh}), nil
	}},
	"GET /api/v1/users":        {want: adminOnly(200)},
	"GET /api/v1/users/{id}":   {want: adminOnly(200), params: userID},
	"PATCH /api/v1/users/{id}": {want: adminOnly(200), params: userID, body: fixed(`{"role":"user"}`)},

	// Videos: the feed is everyone's, changes are the owner's or an admin's.
	"POST /api/v1/videos":       {want: bearer(201), body: func(w *world, _ who) ([]byte, map[string]string) { return w.multipart() }},
	"GET /api/v1/videos":        {want: bearer(200)},
	"DELETE /api/v1/videos":     {want: bearer(200), last: true},
	"GET /api/v1/videos/mine":   {want: bearer(200)},
	"GET /api/v1/videos/{id}":   {want: bearer(200), params: userVideo},
	"PATCH /api/v1/videos/{id}": {want: ownerOrAdmin(200, 404), params: userVideo, body: fixed(`{"title":"renamed"}`)},
	"DELETE /api/v1/videos/{id}": {want: ownerOrAdmin(204, 404), params: func(w *world, _ who) map[string]string {
		return map[string]string{"id": w.newVideo(user)}
	}},
	"POST /api/v1/videos/{id}/restore": {want: ownerOrAdmin(200, 404), params: func(w *world, _ who) map[string]string {
		return map[string]string{"id": w.trashedVideo()}
	}},
	"POST /api/v1/videos/{id}/playback": {want: bearer(200), params: userVideo},
	"GET /api/v1/trash":                 {want: bearer(200)},
	"GET /media/{token}/{id}/{file}":    {want: everyone(200), params: media},

	// tus: an upload in progress is its owner's alone.
	"OPTIONS /api/v1/uploads": {want: everyone(200)},
	"POST /api/v1/uploads": {want: bearer(201), body: func(w *world, _ who) ([]byte, map[string]string) {
		return nil, tusHeaders(len(w.clip))
	}},
	"HEAD /api/v1/uploads/{id}": {want: ownerOnly(200, 404), params: func(w *world, _ who) map[string]string {
		return map[string]string{"id": w.upload}
	}, body: tusOnly},
	"PATCH /api/v1/uploads/{id}": {want: ownerOnly(204, 404), params: freshUpload, body: func(*world, who) ([]byte, map[string]string) {
		return []byte("0123"), map[string]string{"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
	}},
	"DELETE /api/v1/uploads/{id}": {want: ownerOnly(204, 404), params: freshUpload, body: tusOnly},

	// Jobs are the admins': an id that names no job is 404 to them.
	"GET /api/v1/jobs":              {want: adminOnly(200)},
	"POST /api/v1/jobs/{id}/retry":  {want: adminOnly(404), params: noJob},
	"POST /api/v1/jobs/{id}/cancel": {want: adminOnly(404), params: noJob},

	// Storage, usage and logs: one's own for everyone, anyone's for admins.
	"GET /api/v1/storage/me":         {want: bearer(200)},
	"GET /api/v1/storage/users/{id}": {want: adminOnly(200), params: userID},
	"GET /api/v1/usage/me":           {want: bearer(200)},
	"GET /api/v1/usage/users/{id}":   {want: adminOnly(200), params: userID},
	"GET /api/v1/logs":               {want: adminOnly(200)},
	"GET /api/v1/logs/me":            {want: bearer(200)},
	"GET /api/v1/logs/export":        {want: adminOnly(200)},

	// The original system's routes, with its holes closed.
	"POST /api/users/register": {want: everyone(200), body: func(w *world, _ who) ([]byte, map[string]string) {
		return jsonBody(map[string]string{"email": w.unique(), "password": matrixPassword, "username": "new"}), nil
	}},
	"POST /api/users/login": {want: everyone(200), body: func(w *world, _ who) ([]byte, map[string]string) {
		return jsonBody(map[string]string{"email": w.email[user], "password": matrixPassword}), nil
	}},
	"GET /api/users/user/{id}":       {want: ownerOrAdmin(200, 403), params: userID},
	"GET /api/logs/all":              {want: adminOnly(200)},
	"GET /api/logs/user/{user_id}":   {want: ownerOrAdmin(200, 403), params: userID},
	"POST /api/logs/add":             {want: everyone(401), body: fixed(`{"action":"A","description":"d","service":"s"}`)},
	"GET /api/storage/usage":         {want: bearer(200)},
	"GET /api/usage/daily-usage":     {want: bearer(200)},
	"POST /api/videos/upload":        {want: bearer(200), body: func(w *world, _ who) ([]byte, map[string]string) { return w.multipart() }},
	"GET /api/videos/stream":         {want: bearer(200)},
	"GET /api/videos/user/{user_id}": {want: ownerOnly(200, 403), params: userID},
	"GET /api/videos/stream/{filename}": {want: bearer(200), params: func(w *world, _ who) map[string]string {
		return map[string]string{"filename": w.video[user]}
	}},
	"DELETE /api/videos/delete/{filename}": {want: ownerOnly(200, 403), params: func(w *world, _ who) map[string]string {
		return map[string]string{"filename": w.newVideo(user)}
	}},
	"DELETE /api/videos/delete-all": {want: bearer(200), last: true},
}

// everyone answers s to all, whatever token they hold.
func everyone(s int) [nWho]int { return want(s, s, s, s, s, s, s) }

// bearer answers s to any account in good standing, 401 to the rest.
func bearer(s int) [nWho]int { return want(401, s, s, s, 401, 401, s) }

// adminOnly answers s to the admin, 403 to other accounts, 401 to the rest.
func adminOnly(s int) [nWho]int { return want(401, 403, 403, s, 401, 401, 403) }

// ownerOrAdmin answers s to user and the admin, refused to other accounts.
func ownerOrAdmin(s, refused int) [nWho]int { return want(401, s, refused, s, 401, 401, refused) }

// ownerOnly answers s to user alone, refused to other accounts.
func ownerOnly(s, refused int) [nWho]int { return want(401, s, refused, refused, 401, 401, refused) }

func fixed(body string) func(*world, who) ([]byte, map[string]string) {
	return func(*world, who) ([]byte, map[string]string) { return []byte(body), nil }
}

func tusOnly(*world, who) ([]byte, map[string]string) {
	return nil, map[string]string{"Tus-Resumable": "1.0.0"}
}

func userID(w *world, _ who) map[string]string {
	return map[string]string{"id": w.ids[user], "user_id": w.ids[user]}
}

func userVideo(w *world, _ who) map[string]string { return map[string]string{"id": w.video[user]} }

func freshUpload(w *world, _ who) map[string]string { return map[string]string{"id": w.newUpload()} }

func noJob(*world, who) map[string]string { return map[string]string{"id": uuid.NewString()} }

// media splits user's signed media path into the route's parameters.
func media(w *world, _ who) map[string]string {
	parts := strings.Split(strings.TrimPrefix(w.media, "/media/"), "/")
	if len(parts) != 3 {
		w.t.Fatalf("media path %q", w.media)
	}
	return map[string]string{"token": parts[0], "id": parts[1], "file": parts[2]}
}

// sessionID is the session (sid claim) of an access token.
func sessionID(w *world, token string) string {
	parts := strings.Split(token, ".")
	var c struct {
		SID string `json:"sid"`
	}
	if len(parts) != 3 {
		w.t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(b, &c) != nil || c.SID == "" {
		w.t.Fatalf("no sid in %q", token)
	}
	return c.SID
}
