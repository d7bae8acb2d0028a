// Command herald is Herald's single binary: the server (serve), a guided
// tour on the embedded store (demo), and tools around them.
//
// Only this package reads flags and the environment; every component takes
// a Config struct.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/heraldhooks/herald"
)

const usage = `Herald %s: webhook delivery that loses nothing.

Usage:
  herald serve [flags]    run the server (embedded SQLite store by default)
  herald demo [--once]    the whole story on the embedded store, in one command
  herald bench [flags]    measure end-to-end delivery throughput on one or more nodes
  herald keys generate    print a new master key; "herald keys rewrap" re-seals secrets under the newest
  herald audit verify     check that no audit entry was changed or removed
  herald users create     invite a person (the first platform admin) and print their setup link
  herald doctor [flags]   check a configuration (serve's flags) before running it, and name each fix
  herald emit T/I SUBTYPE post sample events of a catalog subtype, with made-up values, to try a webhook
  herald listen [flags]   receive a "listen:" webhook's deliveries on this machine and post them to a local URL
  herald version          print the version

Run "herald <command> -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "herald:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, herald.Version)
		return errors.New("a command is required")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "keys":
		return runKeys(ctx, args[1:], stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr)
	case "users":
		return runUsers(ctx, args[1:], stdout, stderr)
	case "doctor":
		return runDoctor(ctx, args[1:], stdout, stderr)
	case "emit":
		return runEmit(ctx, args[1:], stdout, stderr)
	case "listen":
		return runListen(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "herald %s\n", herald.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintf(stdout, usage, herald.Version)
		return nil
	}
	fmt.Fprintf(stderr, usage, herald.Version)
	return fmt.Errorf("unknown command %q", args[0])
}

// envOr returns the environment variable key, or def when it is unset.
// subcommand reports whether args start with sub, the one subcommand of
// tool. When they do not it prints usage to stderr and returns nil for a
// request for help, else an error saying which subcommand tool needs.
func subcommand(args []string, tool, sub, usage string, stderr io.Writer) (bool, error) {
	if len(args) > 0 && args[0] == sub {
		return true, nil
	}
	fmt.Fprint(stderr, usage)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		return false, nil
	}
	return false, fmt.Errorf("%s needs a subcommand: %s", tool, sub)
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

// envBool reads a boolean environment variable ("1", "true", "yes").
func envBool(key string) bool {
	switch os.Getenv(key) {
	case "1", "true", "TRUE", "True", "yes", "on":
		return true
	}
	return false
}
