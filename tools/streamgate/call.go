package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
	"github.com/streamgate/streamgate/internal/actionroute"
	"github.com/streamgate/streamgate/internal/envelope"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/status"
)

// callFlags are the call command's flags, parsed.
type callFlags struct {
	addr, gateway, key, version, principal, idemKey, watch string
	timeout                                                time.Duration
	timeoutSet                                             bool // -timeout was given
}

// callCmd declares the call command's flags; it sends one request and
// prints its envelope (errNotOK when ok is false), or with -watch prints
// a topic's events.
func callCmd(fs *flag.FlagSet) runner {
	var f callFlags
	fs.StringVar(&f.addr, "addr", "127.0.0.1:9000", "the service's address (any caller.Dial target)")
	fs.StringVar(&f.gateway, "gateway", "", "go through the gateway instead: a URL (http://HOST:PORT, https, ws, wss) names its REST edge and WebSocket endpoint, HOST:PORT (or a gRPC target) its gRPC API; -watch needs the URL")
	fs.StringVar(&f.key, "key", "", "the key to present (default STREAMGATE_SERVICE_KEY, or STREAMGATE_ADMIN_KEY with -gateway)")
	fs.StringVar(&f.version, "version", "", "API version (required with -gateway)")
	fs.StringVar(&f.principal, "principal", "", "end user to act for (needs a delegating key; not with -gateway)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for the answer")
	fs.StringVar(&f.idemKey, "idempotency-key", "", "the request's Idempotency-Key (a retry with the same key replays the first answer)")
	fs.StringVar(&f.watch, "watch", "", "print the events of this topic (e.g. orders/ord_1, items/*, *) as JSON lines until interrupted, instead of a request; with -gateway URL (the gateway's REST URL) over its WebSocket endpoint")
	return func(ctx context.Context, in *invocation) error {
		f.timeoutSet = timeoutSet(in.flags)
		if f.key == "" {
			f.key = os.Getenv("STREAMGATE_SERVICE_KEY")
			if f.gateway != "" {
				f.key = os.Getenv("STREAMGATE_ADMIN_KEY")
			}
		}
		if f.watch != "" {
			return runWatch(ctx, in, f)
		}
		return runCall(ctx, in, f)
	}
}

// edgeURL is the gateway's REST URL when -gateway is one (http, https,
// ws, wss, with a host), with the scheme given; ok false for HOST:PORT
// or another gRPC target.
func edgeURL(gateway string) (u *url.URL, ok bool) {
	u, err := url.Parse(gateway)
	if err != nil || u.Host == "" {
		return nil, false
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
		return u, true
	}
	return nil, false
}

// runWatch prints a topic's events: from the service at -addr, or over
// the WebSocket endpoint of the gateway at -gateway URL.
func runWatch(ctx context.Context, in *invocation, f callFlags) error {
	if f.gateway == "" {
		if len(in.args) > 1 {
			return usagef("unexpected argument %q (-watch takes at most a SERVICE)", in.args[1])
		}
		if f.timeoutSet {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, f.timeout)
			defer cancel()
		}
		return watchService(ctx, f.addr, f.key, f.watch, in.stdout)
	}
	if len(in.args) > 0 {
		return usagef("unexpected argument %q (-watch through the gateway takes no SERVICE ACTION)", in.args[0])
	}
	if _, ok := edgeURL(f.gateway); !ok {
		return usagef("-watch through the gateway needs its REST URL, e.g. -gateway http://127.0.0.1:8080, not %q (its gRPC API has no events)", f.gateway)
	}
	if f.version == "" {
		return usagef("-watch with -gateway needs -version")
	}
	ok, err := watchGateway(ctx, f.gateway, f.key, f.version, f.watch, f.timeout, in.stdout)
	if err == nil && !ok {
		return errNotOK
	}
	return err
}

// runCall sends one request and prints its envelope.
func runCall(ctx context.Context, in *invocation, f callFlags) error {
	if len(in.args) < 2 {
		return usagef("want SERVICE ACTION [ID] [JSON]")
	}
	service, action, id, body := in.args[0], in.args[1], "", json.RawMessage(nil)
	if len(in.args) > 2 {
		id = in.args[2]
	}
	if len(in.args) > 3 {
		body = json.RawMessage(in.args[3])
		if !json.Valid(body) {
			return usagef("the body is not valid JSON: %s", in.args[3])
		}
	}
	if f.gateway != "" && f.version == "" {
		return usagef("-gateway needs -version")
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	var env envelope.Envelope
	var err error
	switch u, isURL := edgeURL(f.gateway); {
	case isURL:
		env, err = callGatewayREST(ctx, u, f.key, f.version, f.idemKey, service, action, id, body)
	case f.gateway != "":
		env, err = callGateway(ctx, f.gateway, f.key, f.version, f.idemKey, service, action, id, body)
	default:
		env, err = callService(ctx, f, action, id, body)
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(in.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(env); err != nil {
		return err
	}
	if !env.OK {
		return errNotOK
	}
	return nil
}

// callService sends the request straight to the service at -addr.
func callService(ctx context.Context, f callFlags, action, id string, body []byte) (envelope.Envelope, error) {
	c, err := caller.Dial(f.addr, caller.WithKey(f.key))
	if err != nil {
		return envelope.Envelope{}, err
	}
	defer c.Close()
	m := socket.Meta{APIVersion: f.version, IdempotencyKey: f.idemKey}
	m.Principal.Subject = f.principal
	res, err := c.Request(caller.ContextWithMeta(ctx, m), action, id, body)
	return envelope.New(res, err), nil
}

// callGateway finds the version's route that sends SERVICE ACTION and
// invokes it through GatewayService, with the same access rules as REST.
func callGateway(ctx context.Context, addr, key, version, idemKey, service, action, id string, body []byte) (envelope.Envelope, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return envelope.Envelope{}, err
	}
	defer cc.Close()
	gc := gatewayv1.NewGatewayServiceClient(cc)
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	routes, err := gc.ListRoutes(ctx, &gatewayv1.ListRoutesRequest{Version: version})
	if err != nil {
		return envelope.New(nil, status.FromGRPC(err)), nil
	}
	req, ok := routeFor(routes.GetRoutes(), service, action, id != "")
	if !ok {
		return envelope.New(nil, socket.Errorf(socket.CodeNotFound, "API version %s has no route for %s %s", version, service, action)), nil
	}
	req.Version, req.Id, req.IdempotencyKey = version, id, idemKey
	req.Payload = &gatewayv1.InvokeRequest_BodyRaw{BodyRaw: body}
	resp, err := gc.Invoke(ctx, req)
	if err != nil {
		return envelope.New(nil, status.FromGRPC(err)), nil
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

// maxAnswer bounds an answer of the gateway's REST edge.
const maxAnswer = 16 << 20

// callGatewayREST is callGateway over the gateway's REST edge at base:
// the REST binding of GatewayService (GET
// /gateway/v1/versions/{version}/routes, POST /gateway/v1/invoke).
func callGatewayREST(ctx context.Context, base *url.URL, key, version, idemKey, service, action, id string, body []byte) (envelope.Envelope, error) {
	u := *base
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	env, err := restDo(ctx, http.MethodGet, u.JoinPath("gateway/v1/versions", version, "routes"), key, nil)
	if err != nil || !env.OK {
		return env, err
	}
	var routes gatewayv1.ListRoutesResponse
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(env.Result, &routes); err != nil {
		return envelope.Envelope{}, fmt.Errorf("%s: the routes: %w", u.Redacted(), err)
	}
	req, ok := routeFor(routes.GetRoutes(), service, action, id != "")
	if !ok {
		return envelope.New(nil, socket.Errorf(socket.CodeNotFound, "API version %s has no route for %s %s", version, service, action)), nil
	}
	req.Version, req.Id, req.IdempotencyKey = version, id, idemKey
	if body != nil {
		var v structpb.Value
		if err := protojson.Unmarshal(body, &v); err != nil {
			return envelope.Envelope{}, usagef("the body is not valid JSON: %v", err)
		}
		req.Payload = &gatewayv1.InvokeRequest_Body{Body: &v}
	}
	b, err := protojson.Marshal(req)
	if err != nil {
		return envelope.Envelope{}, err
	}
	return restDo(ctx, http.MethodPost, u.JoinPath("gateway/v1/invoke"), key, b)
}

// restDo sends one request to the gateway's REST edge and decodes the
// envelope it answers with.
func restDo(ctx context.Context, method string, u *url.URL, key string, body []byte) (envelope.Envelope, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return envelope.Envelope{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return envelope.Envelope{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return envelope.Envelope{}, fmt.Errorf("%s %s: %w", method, u.Redacted(), err)
	}
	var env envelope.Envelope
	if err := json.Unmarshal(b, &env); err != nil || (!env.OK && env.Error == nil) {
		return envelope.Envelope{}, fmt.Errorf("%s %s: %s, not the gateway's envelope (is -gateway the gateway's REST URL?)", method, u.Redacted(), resp.Status)
	}
	return env, nil
}
