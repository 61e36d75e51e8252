package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
	"github.com/streamgate/streamgate/internal/actionroute"
	"github.com/streamgate/streamgate/internal/envelope"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// callCmd sends one request and prints its envelope; ok reports the
// envelope's ok.
func callCmd(ctx context.Context, args []string, stdout io.Writer) (ok bool, err error) {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9000", "the service's address (any socket.Dial target)")
	gw := fs.String("gateway", "", "call through the gateway's gRPC API at this address instead")
	key := fs.String("key", "", "the key to present (default STREAMGATE_SERVICE_KEY, or STREAMGATE_ADMIN_KEY with -gateway)")
	version := fs.String("version", "", "API version (required with -gateway)")
	principal := fs.String("principal", "", "end user to act for (needs a delegating key; not with -gateway)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the answer")
	idemKey := fs.String("idempotency-key", "", "the request's Idempotency-Key (a retry with the same key replays the first answer)")
	watch := fs.String("watch", "", "print the events of this topic (e.g. orders/ord_1, items/*, *) as JSON lines until interrupted, instead of a request; with -gateway URL (the gateway's REST URL) over its WebSocket endpoint")
	if err := parseFlags(fs, args); err != nil {
		return false, err
	}
	if *watch != "" && *gw != "" {
		if len(fs.Args()) > 0 {
			return false, errors.New("call: -watch takes no SERVICE ACTION")
		}
		if *key == "" {
			*key = os.Getenv("STREAMGATE_ADMIN_KEY")
		}
		return watchGateway(ctx, *gw, *key, *version, *watch, *timeout, stdout)
	}
	rest := fs.Args()
	if *watch != "" {
		if len(rest) > 1 {
			return false, errors.New("call: -watch takes no ACTION: want [SERVICE]")
		}
		if *key == "" {
			*key = os.Getenv("STREAMGATE_SERVICE_KEY")
		}
		if timeoutSet(fs) {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *timeout)
			defer cancel()
		}
		return true, watchService(ctx, *addr, *key, *watch, stdout)
	}
	if len(rest) < 2 || len(rest) > 4 {
		return false, errors.New("call: want SERVICE ACTION [ID] [JSON]")
	}
	service, action, id, body := rest[0], rest[1], "", json.RawMessage(nil)
	if len(rest) > 2 {
		id = rest[2]
	}
	if len(rest) > 3 {
		body = json.RawMessage(rest[3])
		if !json.Valid(body) {
			return false, fmt.Errorf("call: the body is not valid JSON: %s", rest[3])
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var env envelope.Envelope
	if *gw != "" {
		if *key == "" {
			*key = os.Getenv("STREAMGATE_ADMIN_KEY")
		}
		env, err = callGateway(ctx, *gw, *key, *version, *idemKey, service, action, id, body)
		if err != nil {
			return false, err
		}
	} else {
		if *key == "" {
			*key = os.Getenv("STREAMGATE_SERVICE_KEY")
		}
		c, err := socket.Dial(*addr, socket.WithKey(*key))
		if err != nil {
			return false, err
		}
		defer c.Close()
		m := socket.Meta{APIVersion: *version, IdempotencyKey: *idemKey}
		m.Principal.Subject = *principal
		res, err := c.Request(socket.ContextWithMeta(ctx, m), action, id, body)
		env = envelope.New(res, err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return env.OK, enc.Encode(env)
}

// callGateway finds the version's route that sends SERVICE ACTION and
// invokes it through GatewayService, with the same access rules as REST.
func callGateway(ctx context.Context, addr, key, version, idemKey, service, action, id string, body []byte) (envelope.Envelope, error) {
	if version == "" {
		return envelope.Envelope{}, errors.New("call: -gateway needs -version")
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return envelope.Envelope{}, err
	}
	defer cc.Close()
	gc := gatewayv1.NewGatewayServiceClient(cc)
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	routes, err := gc.ListRoutes(ctx, &gatewayv1.ListRoutesRequest{Version: version})
	if err != nil {
		return envelope.New(nil, socket.FromStatus(err)), nil
	}
	req, ok := routeFor(routes.GetRoutes(), service, action, id != "")
	if !ok {
		return envelope.New(nil, socket.Errorf(socket.CodeNotFound, "API version %s has no route for %s %s", version, service, action)), nil
	}
	req.Version, req.Id, req.IdempotencyKey = version, id, idemKey
	req.Payload = &gatewayv1.InvokeRequest_BodyRaw{BodyRaw: body}
	resp, err := gc.Invoke(ctx, req)
	if err != nil {
		return envelope.New(nil, socket.FromStatus(err)), nil
	}
	if e := resp.GetError(); e != nil {
		return envelope.New(nil, status.FromProto(e)), nil
	}
	return envelope.New(resp.GetResultRaw(), nil), nil
}

// routeFor turns the route that sends service's action into an Invoke
// request (resource, action segment, method); withID prefers item routes.
func routeFor(routes []*gatewayv1.Route, service, action string, withID bool) (*gatewayv1.InvokeRequest, bool) {
	list := make([]actionroute.Route, len(routes))
	for i, r := range routes {
		list[i] = actionroute.Route{Method: r.GetMethod(), Path: r.GetPath(), Service: r.GetService(), Action: r.GetAction()}
	}
	t, ok := actionroute.Find(list, service, action, withID)
	if !ok {
		return nil, false
	}
	return &gatewayv1.InvokeRequest{Resource: t.Resource, Method: t.Method, Action: t.Segment}, true
}
