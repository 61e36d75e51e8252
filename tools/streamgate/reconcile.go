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
	"github.com/streamgate/streamgate/services/socket/caller"
)

// reconcileCmd declares the reconcile command's flags; it runs one
// reconciliation of orders, payments and stock and prints one line per
// settlement and a summary (or the report as JSON).
func reconcileCmd(fs *flag.FlagSet) runner {
	ordersAddr := fs.String("orders", "127.0.0.1:9103", "the orders service's address (any caller.Dial target)")
	paymentsAddr := fs.String("payments", "127.0.0.1:9104", "the payments service's address")
	inventoryAddr := fs.String("inventory", "127.0.0.1:9102", `the inventory service's address; "" leaves reserved stock alone`)
	key := fs.String("key", "", "the services' key, one that may act for a principal (default STREAMGATE_SERVICE_KEY)")
	dryRun := fs.Bool("dry-run", false, "report what would be settled and change nothing")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	olderThan := fs.Duration("older-than", payments.DefaultSettleOlderThan, "leave payments younger than this to the purchases that made them")
	timeout := fs.Duration("timeout", time.Minute, "how long the whole run may take")
	return func(ctx context.Context, in *invocation) error {
		return runReconcile(ctx, in.stdout, reconcileFlags{*ordersAddr, *paymentsAddr, *inventoryAddr, *key, *dryRun, *asJSON, *olderThan, *timeout})
	}
}

// reconcileFlags are the reconcile command's flags, parsed.
type reconcileFlags struct {
	ordersAddr, paymentsAddr, inventoryAddr, key string
	dryRun, asJSON                               bool
	olderThan, timeout                           time.Duration
}

// runReconcile reconciles as f says.
func runReconcile(ctx context.Context, stdout io.Writer, f reconcileFlags) error {
	if f.key == "" {
		f.key = os.Getenv("STREAMGATE_SERVICE_KEY")
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	oc, err := caller.Dial(f.ordersAddr, caller.WithKey(f.key))
	if err != nil {
		return err
	}
	defer oc.Close()
	pc, err := caller.Dial(f.paymentsAddr, caller.WithKey(f.key))
	if err != nil {
		return err
	}
	defer pc.Close()
	opts := reconcile.Options{Orders: oc, Payments: pc, DryRun: f.dryRun, OlderThan: f.olderThan}
	if f.inventoryAddr != "" {
		ic, err := caller.Dial(f.inventoryAddr, caller.WithKey(f.key))
		if err != nil {
			return err
		}
		defer ic.Close()
		opts.Inventory = ic
	}
	rep, err := reconcile.Run(ctx, opts)
	if f.asJSON {
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
		return err
	}
	return nil
}
