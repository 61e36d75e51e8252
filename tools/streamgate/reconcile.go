package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/reconcile"
	"github.com/streamgate/streamgate/services/socket"
)

// reconcileCmd runs one reconciliation of orders, payments and stock and
// prints one line per settlement and a summary (or the report as JSON). A
// failure after the flags are read is errReconcile: exit status 1.
func reconcileCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	ordersAddr := fs.String("orders", "127.0.0.1:9103", "the orders service's address (any socket.Dial target)")
	paymentsAddr := fs.String("payments", "127.0.0.1:9104", "the payments service's address")
	inventoryAddr := fs.String("inventory", "127.0.0.1:9102", `the inventory service's address; "" leaves reserved stock alone`)
	key := fs.String("key", "", "the services' key, one that may act for a principal (default STREAMGATE_SERVICE_KEY)")
	dryRun := fs.Bool("dry-run", false, "report what would be settled and change nothing")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	olderThan := fs.Duration("older-than", payments.DefaultSettleOlderThan, "leave payments younger than this to the purchases that made them")
	timeout := fs.Duration("timeout", time.Minute, "how long the whole run may take")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("reconcile: unexpected arguments %q", fs.Args())
	}
	if *key == "" {
		*key = os.Getenv("STREAMGATE_SERVICE_KEY")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	oc, err := socket.Dial(*ordersAddr, socket.WithKey(*key))
	if err != nil {
		return &runError{err}
	}
	defer oc.Close()
	pc, err := socket.Dial(*paymentsAddr, socket.WithKey(*key))
	if err != nil {
		return &runError{err}
	}
	defer pc.Close()
	opts := reconcile.Options{Orders: oc, Payments: pc, DryRun: *dryRun, OlderThan: *olderThan}
	if *inventoryAddr != "" {
		ic, err := socket.Dial(*inventoryAddr, socket.WithKey(*key))
		if err != nil {
			return &runError{err}
		}
		defer ic.Close()
		opts.Inventory = ic
	}
	rep, err := reconcile.Run(ctx, opts)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if eerr := enc.Encode(rep); eerr != nil {
			return eerr
		}
	} else {
		for _, e := range rep.Entries {
			fmt.Fprintln(stdout, e)
		}
		for _, e := range rep.Unresolved {
			fmt.Fprintln(stdout, "unresolved", e)
		}
		fmt.Fprintln(stdout, rep.Summary())
	}
	if err != nil {
		return &runError{err}
	}
	return nil
}

// runError is a subcommand that failed while running, after its
// arguments were accepted: exit status 1, no usage.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }
