package stack

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/streamgate/streamgate/gateway"
)

// portStep is how far apart the ports of consecutive gateways are: gateway
// k listens on each of the given ports plus portStep·k (8080, 8180, …).
const portStep = 100

// maxGateways bounds Options.Gateways.
const maxGateways = 16

// runGateways runs o.Gateways gateways in front of the services until ctx
// ends; the banner is printed once every one serves. The first that fails
// stops the others, and its error is returned.
func (o Options) runGateways(ctx context.Context, svcs *services, sandboxes map[string]string) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var (
		mu    sync.Mutex // guards addrs, left
		addrs = make([]gateway.Addrs, o.Gateways)
		left  = o.Gateways
	)
	runs := make([]gateway.RunOptions, o.Gateways)
	for k := range runs {
		var err error
		if runs[k], err = o.gatewayOptions(k, svcs); err != nil {
			return err
		}
	}
	errs := make(chan error, o.Gateways)
	for k, ro := range runs {
		ro.Ready = func(a gateway.Addrs) {
			mu.Lock()
			defer mu.Unlock()
			addrs[k], left = a, left-1
			if left == 0 {
				printBanner(o, addrs, svcs, sandboxes)
			}
		}
		go func() {
			err := gateway.Run(ctx, ro)
			if err != nil {
				stop(err)
			}
			errs <- err
		}()
	}
	var first error
	for range o.Gateways {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// gatewayOptions are gateway k's options: in front of the services, with
// the stack's keys, on the stack's addresses shifted for k.
func (o Options) gatewayOptions(k int, svcs *services) (gateway.RunOptions, error) {
	var gwOpts []gateway.Option
	if o.NoCache {
		gwOpts = append(gwOpts, gateway.WithCacheSize(0), gateway.WithoutCoalescing())
	}
	env := map[string]string{
		"STREAMGATE_SERVICE_KEY": o.ServiceKey,
		"STREAMGATE_ADMIN_KEY":   o.AdminKey,
		"STREAMGATE_JWT_SECRET":  o.JWTSecret,
	}
	var addrs [3]string
	for i, a := range []string{o.HTTPAddr, o.GRPCAddr, o.AdminAddr} {
		var err error
		if addrs[i], err = shiftPort(a, k); err != nil {
			return gateway.RunOptions{}, err
		}
	}
	logger := o.Logger.With("part", "gateway")
	if o.Gateways > 1 {
		logger = logger.With("gateway", k+1)
	}
	return gateway.RunOptions{
		ConfigPath: o.ConfigPath, ConfigData: o.ConfigData, HTTPAddr: addrs[0], GRPCAddr: addrs[1], AdminAddr: addrs[2], Pprof: o.Pprof,
		Demo:      true, // the shop is what the page shows
		ListenTLS: o.ListenTLS, InsecurePlaintext: o.InsecurePlaintext,
		Env:     func(k string) string { return env[k] },
		Targets: svcs.gatewayTargets(),
		Options: gwOpts,
		// One registry: the gateways' series add up, beside the services'.
		Metrics: svcs.metrics,
		Logger:  logger,
	}, nil
}

// shiftPort is addr with its port plus portStep·k; "" and port 0 stay.
func shiftPort(addr string, k int) (string, error) {
	if addr == "" || k == 0 {
		return addr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", fmt.Errorf("%s: the port is not a number", addr)
	}
	if p == 0 {
		return addr, nil
	}
	if p += portStep * k; p > 65535 {
		return "", fmt.Errorf("gateway %d: port %d is past 65535 (gateway k listens on each port plus %d·k)", k+1, p, portStep)
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}
