package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/streamgate/streamgate/services/run"
)

// serviceAdmin is `streamgate service`'s admin listener: /healthz (the
// process is up), /readyz (200 while the service serves, 503 before and
// from the moment its drain starts), /debug/pprof/ with -pprof.
type serviceAdmin struct {
	addr  string
	pprof bool
	out   io.Writer // where the admin address is printed
	ready atomic.Bool
}

// addServiceAdminFlags declares -admin and -pprof on the service
// command's flags.
func addServiceAdminFlags(fs *flag.FlagSet) *serviceAdmin {
	a := &serviceAdmin{}
	fs.StringVar(&a.addr, "admin", "", "admin listen address (/healthz, /readyz); off when empty")
	fs.BoolVar(&a.pprof, "pprof", false, "serve /debug/pprof/ on the admin listener (needs -admin)")
	return a
}

// run serves the service with o, and the admin listener beside it when
// -admin is set.
func (a *serviceAdmin) run(ctx context.Context, o run.Options) error {
	if a.addr == "" {
		return run.Run(ctx, o)
	}
	lis, err := net.Listen("tcp", a.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	if o.Logger != nil {
		o.Logger.Info("service admin listening", "service", o.Service, "addr", lis.Addr().String(), "pprof", a.pprof)
	}
	if a.out != nil {
		fmt.Fprintf(a.out, "admin http://%s   (/healthz, /readyz)\n", lis.Addr())
	}
	ready := o.Ready
	o.Ready = func(addr string) {
		a.ready.Store(true)
		if ready != nil {
			ready(addr)
		}
	}
	stop := context.AfterFunc(ctx, func() { a.ready.Store(false) }) // the drain starts
	defer stop()
	err = run.Run(ctx, o)
	a.ready.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-served
	return err
}

func (a *serviceAdmin) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, `{"ok":true,"result":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready.Load() {
			writeJSON(w, http.StatusServiceUnavailable, `{"ok":false,"error":{"code":"UNAVAILABLE","message":"the service is not serving"}}`)
			return
		}
		writeJSON(w, http.StatusOK, `{"ok":true,"result":"ready"}`)
	})
	if a.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}
