package httpx

import "net/http"

// Router is where a service registers its routes. The app's implementation
// records every pattern so a test can hold the OpenAPI document to them.
type Router interface {
	Handle(pattern string, h http.Handler)
}

// HandlerFunc is a handler that returns its error instead of writing it,
// so that every error reaches the client through Error.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP implements http.Handler.
func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		Error(w, r, err)
	}
}
