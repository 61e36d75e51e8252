package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/streamgate/streamgate/tools/streamgate/internal/conformance"
)

// conformanceCmd runs the socket protocol's conformance kit against a
// fixture service (docs/protocol.md §12) and prints one line per case and
// a summary, or the report as JSON. It reports whether every case passed.
func conformanceCmd(ctx context.Context, args []string, stdout io.Writer) (bool, error) {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9000", "the fixture service's address, HOST:PORT")
	key := fs.String("key", "", "the fixture's key (default STREAMGATE_CONFORMANCE_KEY)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	runExpr := fs.String("run", "", "run only the cases whose names match this regular expression")
	timeout := fs.Duration("timeout", conformance.DefaultTimeout, "how long one case may take")
	if err := parseFlags(fs, args); err != nil {
		return false, err
	}
	if fs.NArg() != 0 {
		return false, &usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *key == "" {
		*key = os.Getenv("STREAMGATE_CONFORMANCE_KEY")
	}
	if *key == "" {
		return false, &usageError{errors.New("want -key or STREAMGATE_CONFORMANCE_KEY: the key the fixture was started with")}
	}
	if *timeout <= 0 {
		return false, &usageError{errors.New("-timeout must be positive")}
	}
	o := conformance.Options{Addr: *addr, Key: *key, Timeout: *timeout}
	if *runExpr != "" {
		re, err := regexp.Compile(*runExpr)
		if err != nil {
			return false, &usageError{fmt.Errorf("-run: %v", err)}
		}
		o.Run = re
	}
	rep := conformance.Run(ctx, o)
	if *asJSON {
		if err := rep.JSON(stdout); err != nil {
			return false, &runError{err}
		}
	} else {
		rep.Print(stdout)
	}
	return rep.Failed == 0 && rep.Passed > 0, nil
}
