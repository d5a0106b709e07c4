// Command reel is a self-hosted video streaming backend. One binary runs
// every service in one process (the default) or any subset of them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/reel-video/reel/internal/app"
	"github.com/reel-video/reel/internal/config"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/users"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

const usage = `reel — a self-hosted video streaming backend

Usage:
  reel serve [-target=all|users|videos|storage|usage|logs|gateway|a,comma,list] [flags]
  reel migrate [flags]
  reel user create -email EMAIL -password PASSWORD -username NAME [-admin] [flags]
  reel keys rotate [flags]
  reel check [-fix] [-json] [-grace D] [flags]
  reel backup DEST [flags]      (SQLite and a blob directory; online)
  reel restore SRC [flags]      (into an empty data directory)
  reel loadtest -url URL [-users N] [-duration D] [-requests N] [-weights …] [-out DIR]
  reel version

Every flag can also be set with its REEL_* environment variable; run
"reel serve -h" for the list.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) && !errors.Is(err, errFindings) {
			fmt.Fprintln(os.Stderr, "reel:", err)
		}
		if errors.Is(err, errFindings) {
			os.Exit(1)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	err := dispatch(ctx, args, getenv, stdout, stderr)
	if errors.Is(err, errPrinted) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		tuneGC(getenv)
		return serve(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		cfg, log, err := load("migrate", rest, getenv, stdout, stderr)
		if err != nil {
			return err
		}
		return app.Migrate(ctx, cfg, log)
	case "user":
		return userCmd(ctx, rest, getenv, stdout, stderr)
	case "keys":
		if len(rest) == 0 || rest[0] != "rotate" {
			return errors.New("usage: reel keys rotate [flags]")
		}
		cfg, log, err := load("keys rotate", rest[1:], getenv, stdout, stderr)
		if err != nil {
			return err
		}
		if err := app.RotateKey(ctx, cfg, log); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "rotated the token signing key; old tokens stay valid until they expire")
		return nil
	case "check":
		return checkCmd(ctx, rest, getenv, stdout, stderr)
	case "backup", "restore":
		return backupCmd(ctx, cmd, rest, getenv, stdout, stderr)
	case "loadtest":
		tuneGC(getenv)
		return loadtestCmd(ctx, rest, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "reel", buildVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// errPrinted ends a command after -print-config has printed the
// configuration; run returns nil for it.
var errPrinted = errors.New("configuration printed")

// load reads the configuration of a command and makes its logger. The
// whole configuration (secrets masked) is logged at debug level only, or
// printed to stdout by -print-config, which then ends the command.
func load(name string, args []string, getenv func(string) string, stdout, stderr io.Writer, extra ...func(*flag.FlagSet)) (*config.Config, *slog.Logger, error) {
	var printConfig bool
	extra = append(extra, func(fs *flag.FlagSet) {
		fs.BoolVar(&printConfig, "print-config", false, "print the effective configuration (secrets masked) as REEL_*=value lines and exit")
	})
	cfg, printer, err := config.Load(name, args, getenv, stderr, extra...)
	if err != nil {
		return nil, nil, err
	}
	attrs := printer.Attrs()
	if printConfig {
		for i := 0; i+1 < len(attrs); i += 2 {
			fmt.Fprintf(stdout, "%s=%s\n", attrs[i], attrs[i+1])
		}
		return nil, nil, errPrinted
	}
	log := obs.NewLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	log.Debug("configuration", attrs...)
	return cfg, log, nil
}

// gcPercent is the garbage collector's GOGC for the long-running commands
// when the environment does not set one. Their live heap is a few MiB, so
// at Go's default of 100 the collector's 4 MiB minimum goal makes it run
// many times a second under a stream of range requests; 200 doubles the
// goal for a heap of at most three times the live data (figures in
// docs/benchmarks.md). GOGC and GOMEMLIMIT in the environment win.
const gcPercent = 200

// tuneGC sets gcPercent unless GOGC is set.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, log, err := load("serve", args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	a, err := app.New(cfg, log)
	if err != nil {
		return err
	}
	// What is where; the URL to open follows once the port is bound.
	log.Info("starting reel", append([]any{"version", buildVersion()}, a.Summary()...)...)
	return a.Run(ctx, nil)
}

func userCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New(`usage: reel user create -email EMAIL -password PASSWORD -username NAME [-admin]`)
	}
	var email, password, username string
	var admin bool
	accountFlags := func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "email of the new account")
		fs.StringVar(&password, "password", "", "password of the new account (at least 8 characters)")
		fs.StringVar(&username, "username", "", "display name of the new account")
		fs.BoolVar(&admin, "admin", false, "give the account the admin role")
	}
	cfg, log, err := load("user create", args[1:], getenv, stdout, stderr, accountFlags)
	if err != nil {
		return err
	}
	if email == "" || password == "" || username == "" {
		return errors.New("user create: -email, -password and -username are required")
	}
	u, err := app.CreateUser(ctx, cfg, log, users.RegisterInput{Email: email, Password: password, Username: username, Admin: admin})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s %s (%s)\n", u.Role, u.Email, u.ID)
	return nil
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", ""
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			return "dev-" + rev + dirty
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
	}
	return "dev"
}
