// Package app assembles reel's modules into a process. As in Grafana Loki,
// a target names a set of modules; the registry adds their dependencies,
// orders them so that providers start before their consumers, and the
// lifecycle starts them in that order and stops them in reverse.
package app

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Module is a named unit with dependencies. Deps are always pulled in;
// After only orders the module after others when they run in the same
// process (e.g. videos uses the in-process storage service when it is here,
// and an HTTP client otherwise).
type Module struct {
	Name string
	Deps []string
	// After lists modules that must start first if they are present.
	After []string
	// Public marks modules a user may name as a target.
	Public bool
	init   func(context.Context, *App) error
}

// Registry knows every module.
type Registry struct {
	mods map[string]*Module
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{mods: map[string]*Module{}} }

// Register adds a module.
func (r *Registry) Register(m *Module) {
	if _, dup := r.mods[m.Name]; dup {
		panic("app: module registered twice: " + m.Name) // a programming error
	}
	r.mods[m.Name] = m
}

// Targets lists the names a user may pass to -target.
func (r *Registry) Targets() []string {
	var out []string
	for n, m := range r.mods {
		if m.Public {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Resolve expands targets with their dependencies and returns the modules
// in start order.
func (r *Registry) Resolve(targets []string) ([]*Module, error) {
	want := map[string]bool{}
	var add func(name string, from string) error
	add = func(name, from string) error {
		m, ok := r.mods[name]
		if !ok {
			if from == "" {
				return fmt.Errorf("unknown target %q (known: %s)", name, strings.Join(r.Targets(), ", "))
			}
			return fmt.Errorf("module %q depends on unknown module %q", from, name)
		}
		if from == "" && !m.Public {
			return fmt.Errorf("unknown target %q (known: %s)", name, strings.Join(r.Targets(), ", "))
		}
		if want[name] {
			return nil
		}
		want[name] = true
		for _, d := range m.Deps {
			if err := add(d, name); err != nil {
				return err
			}
		}
		return nil
	}
	for _, t := range targets {
		if err := add(strings.TrimSpace(t), ""); err != nil {
			return nil, err
		}
	}
	// Depth-first topological sort over Deps and the present After edges,
	// visiting names in sorted order so the start order is deterministic.
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	const (
		unseen = iota
		visiting
		done
	)
	state := map[string]int{}
	var order []*Module
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case visiting:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(path, n), " -> "))
		case done:
			return nil
		}
		state[n] = visiting
		m := r.mods[n]
		edges := append([]string{}, m.Deps...)
		for _, a := range m.After {
			if want[a] {
				edges = append(edges, a)
			}
		}
		sort.Strings(edges)
		for _, d := range edges {
			if err := visit(d, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = done
		order = append(order, m)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}
