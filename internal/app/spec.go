package app

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/reel-video/reel/internal/compat"
	"github.com/reel-video/reel/internal/logs"
	"github.com/reel-video/reel/internal/storage"
	"github.com/reel-video/reel/internal/usage"
	"github.com/reel-video/reel/internal/users"
	"github.com/reel-video/reel/internal/videos"
)

//go:embed openapi.json
var baseSpec []byte

// spec is the process's OpenAPI document: the base (operations routes and
// shared schemas) merged with the fragment of every service running here,
// so that each process describes exactly the routes it serves.
type spec struct {
	mu    sync.Mutex
	doc   map[string]any
	cache []byte
}

func newSpec() *spec {
	s := &spec{}
	if err := json.Unmarshal(baseSpec, &s.doc); err != nil {
		panic(fmt.Sprintf("app: embedded openapi.json: %v", err)) // caught by tests
	}
	return s
}

// add merges a fragment {"paths":{…},"components":{"schemas":{…}}}.
func (s *spec) add(fragment []byte) error {
	var f map[string]any
	if err := json.Unmarshal(fragment, &f); err != nil {
		return fmt.Errorf("openapi fragment: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	merge(s.doc, f)
	s.cache = nil
	return nil
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func (s *spec) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache, _ = json.MarshalIndent(s.doc, "", "  ")
	}
	return s.cache
}

// fragments are each service's OpenAPI fragments: its API.md routes and
// the original system's compatibility routes.
var fragments = map[string][][]byte{
	"users":   {users.OpenAPI, compat.UsersOpenAPI},
	"logs":    {logs.OpenAPI, compat.LogsOpenAPI},
	"storage": {storage.OpenAPI, compat.StorageOpenAPI},
	"usage":   {usage.OpenAPI, compat.UsageOpenAPI},
	"videos":  {videos.OpenAPI, compat.VideosOpenAPI},
}

// document adds a service's routes to the process's OpenAPI document.
func (a *App) document(svc string) error {
	f, ok := fragments[svc]
	if !ok {
		return fmt.Errorf("openapi: no fragments for service %q", svc)
	}
	for _, frag := range f {
		if err := a.spec.add(frag); err != nil {
			return fmt.Errorf("openapi %s: %w", svc, err)
		}
	}
	return nil
}
