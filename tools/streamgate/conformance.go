package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/streamgate/streamgate/tools/streamgate/internal/conformance"
)

// conformanceCmd declares the conformance command's flags; it runs the
// socket protocol's conformance kit against a fixture service
// (docs/protocol.md §12) and prints one line per case and a summary, or
// the report as JSON; errNotOK when a case failed.
func conformanceCmd(fs *flag.FlagSet) runner {
	addr := fs.String("addr", "127.0.0.1:9000", "the fixture service's address, HOST:PORT")
	key := fs.String("key", "", "the fixture's key (default STREAMGATE_CONFORMANCE_KEY)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	runExpr := fs.String("run", "", "run only the cases whose names match this regular expression")
	timeout := fs.Duration("timeout", conformance.DefaultTimeout, "how long one case may take")
	return func(ctx context.Context, in *invocation) error {
		return runConformance(ctx, in.stdout, *addr, *key, *asJSON, *runExpr, *timeout)
	}
}

// runConformance runs the kit against the fixture at addr.
func runConformance(ctx context.Context, stdout io.Writer, addr, key string, asJSON bool, runExpr string, timeout time.Duration) error {
	if key == "" {
		key = os.Getenv("STREAMGATE_CONFORMANCE_KEY")
	}
	if key == "" {
		return &usageError{errors.New("want -key or STREAMGATE_CONFORMANCE_KEY: the key the fixture was started with")}
	}
	if timeout <= 0 {
		return &usageError{errors.New("-timeout must be positive")}
	}
	o := conformance.Options{Addr: addr, Key: key, Timeout: timeout}
	if runExpr != "" {
		re, err := regexp.Compile(runExpr)
		if err != nil {
			return &usageError{fmt.Errorf("-run: %w", err)}
		}
		o.Run = re
	}
	rep := conformance.Run(ctx, o)
	if asJSON {
		if err := rep.JSON(stdout); err != nil {
			return err
		}
	} else {
		rep.Print(stdout)
	}
	if rep.Failed != 0 || rep.Passed == 0 {
		return errNotOK
	}
	return nil
}
