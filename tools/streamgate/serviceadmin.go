package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/tools/streamgate/internal/cliflag"
)

// serviceAdmin is `streamgate service`'s admin listener (served by
// services/run): /healthz, /readyz (503 before serving and from the
// moment the drain starts), /metrics, and /debug/pprof/ with -pprof.
type serviceAdmin struct {
	addr  string
	pprof bool
	out   io.Writer // where the admin address is printed
}

// addServiceAdminFlags declares -admin and -pprof on the service
// command's flags.
func addServiceAdminFlags(fs *flag.FlagSet) *serviceAdmin {
	a := &serviceAdmin{}
	fs.Func("admin", "admin listen address (/healthz, /readyz, /metrics); off when empty", func(s string) error {
		if err := cliflag.CheckListen(s); err != nil {
			return err
		}
		a.addr = s
		return nil
	})
	fs.BoolVar(&a.pprof, "pprof", false, "serve /debug/pprof/ on the admin listener (needs -admin)")
	return a
}

// run serves the service with o, and the admin listener beside it when
// -admin is set.
func (a *serviceAdmin) run(ctx context.Context, o run.Options) error {
	o.AdminAddr, o.Pprof = a.addr, a.pprof
	o.AdminReady = func(addr string) {
		if o.Logger != nil {
			o.Logger.Info("service admin listening", "service", o.Service, "addr", addr, "pprof", a.pprof)
		}
		if a.out != nil {
			fmt.Fprintf(a.out, "admin http://%s   (/healthz, /readyz, /metrics)\n", addr)
		}
	}
	return run.Run(ctx, o)
}
