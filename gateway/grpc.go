package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/streamgate/streamgate/gateway/auth"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/observe"
	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket"
)

// grpcService implements GatewayService on top of the same invoke the REST
// edge uses.
type grpcService struct {
	gatewayv1.UnimplementedGatewayServiceServer
	g *Gateway
}

// Invoke runs a route as REST would. The call is the request the gRPC
// edge began (observeUnary); through GatewayService's REST binding, or on
// a server without that interceptor, it is a request of its own (inside
// the REST request, whose access line it fills in).
func (s grpcService) Invoke(ctx context.Context, in *gatewayv1.InvokeRequest) (*gatewayv1.InvokeResponse, error) {
	r := observe.FromContext(ctx)
	if r == nil || r.Protocol != observe.ProtocolGRPC {
		own := s.g.obs.NewRecord(observe.ProtocolGRPC, gatewayv1.GatewayService_Invoke_FullMethodName)
		own.Parent = r
		ctx = own.Begin(grpcTraceContext(ctx))
		defer func() {
			if own.Parent == nil && own.GRPCCode == "" {
				own.GRPCCode = codes.OK.String()
			}
			own.End(ctx)
		}()
		r = own
	}
	return s.invoke(ctx, in, r)
}

// invoke is Invoke with the request's record.
func (s grpcService) invoke(ctx context.Context, in *gatewayv1.InvokeRequest, r *observe.Record) (*gatewayv1.InvokeResponse, error) {
	t := s.g.acquire()
	defer t.release()
	md, _ := metadata.FromIncomingContext(ctx)
	inv := &invocation{
		path:           restPath{version: in.GetVersion(), resource: in.GetResource(), id: in.GetId(), segment: in.GetAction()},
		method:         strings.ToUpper(in.GetMethod()),
		authorization:  metadataValue(md, "authorization"),
		apiKey:         metadataValue(md, "x-api-key"),
		idempotencyKey: in.GetIdempotencyKey(),
		traceParent:    metadataValue(md, "traceparent"),
		traceState:     metadataValue(md, "tracestate"),
	}
	inv.requestID = metadataValue(md, "x-request-id")
	if inv.idempotencyKey == "" {
		inv.idempotencyKey = metadataValue(md, "idempotency-key")
	}
	inv.sanitizeHints()
	inv.obs = r
	r.Invoked(ctx, inv.path.version, inv.requestID, inv.traceParent)
	if d, ok := ctx.Deadline(); ok {
		inv.timeout = max(time.Until(d), time.Millisecond)
	}
	if len(in.GetQuery()) > 0 {
		inv.query = url.Values{}
		for k, v := range in.GetQuery() {
			inv.query.Set(k, v)
		}
	}
	_, raw := in.GetPayload().(*gatewayv1.InvokeRequest_BodyRaw)
	refuse := func(e *socket.Error) (*gatewayv1.InvokeResponse, error) {
		failed(e).tell(ctx, r)
		return invokeResponse(raw, failed(e)), nil
	}
	for _, seg := range []string{inv.path.id, inv.path.segment} {
		if seg != "" && !validID(seg) {
			return refuse(socket.Errorf(socket.CodeInvalidArgument, "id and action must be path segments: not ., .., or containing slashes"))
		}
	}
	switch p := in.GetPayload().(type) {
	case *gatewayv1.InvokeRequest_BodyRaw:
		inv.body = p.BodyRaw
	case *gatewayv1.InvokeRequest_Body:
		b, err := protojson.Marshal(p.Body)
		if err != nil {
			return refuse(socket.Errorf(socket.CodeInvalidArgument, "body: %v", err))
		}
		inv.body = b
	}
	if inv.method == "" {
		inv.method = http.MethodGet
		if len(inv.body) > 0 {
			inv.method = http.MethodPost
		}
	}
	a := s.g.call(ctx, t, inv)
	var header metadata.MD
	if a.replayed {
		header = metadata.Pairs(metadataReplayed, "true")
	}
	if ra := retryAfter(a); ra > 0 {
		header = metadata.Join(header, metadata.Pairs(metadataRetryAfter, strconv.Itoa(ra)))
	}
	if header != nil {
		_ = grpc.SetHeader(ctx, header)
	}
	out := invokeResponse(raw, a)
	if a.err == nil && !out.GetOk() {
		r.Code, r.Status = out.GetError().GetCode(), int(out.GetHttpStatus()) // the service's result was not JSON
	}
	return out, nil
}

// invokeResponse converts an answer, with the result in the form the
// request's body used.
func invokeResponse(raw bool, a answer) *gatewayv1.InvokeResponse {
	out := &gatewayv1.InvokeResponse{Ok: a.err == nil, HttpStatus: int32(a.status)}
	switch {
	case a.err != nil:
		out.Outcome = &gatewayv1.InvokeResponse_Error{Error: a.err.Proto()}
	case raw:
		out.Outcome = &gatewayv1.InvokeResponse_ResultRaw{ResultRaw: a.result}
	default:
		var v structpb.Value
		res := a.result
		if len(res) == 0 {
			res = []byte("null")
		}
		if err := protojson.Unmarshal(res, &v); err != nil {
			out.Ok, out.HttpStatus = false, http.StatusInternalServerError
			out.Outcome = &gatewayv1.InvokeResponse_Error{Error: &socketv1.Error{Code: string(socket.CodeInternal), Message: "the service returned invalid JSON"}}
		} else {
			out.Outcome = &gatewayv1.InvokeResponse_Result{Result: &v}
		}
	}
	return out
}

func (s grpcService) ListRoutes(ctx context.Context, in *gatewayv1.ListRoutesRequest) (*gatewayv1.ListRoutesResponse, error) {
	t := s.g.acquire()
	defer t.release()
	// The route table (and its stats) is for operators only.
	if _, err := s.g.principal(ctx, t, config.Access{Roles: []string{"admin"}}); err != nil {
		return nil, err
	}
	v := t.cfg.Versions[in.GetVersion()]
	if v == nil {
		return nil, status.Errorf(codes.NotFound, "unknown API version %q", in.GetVersion())
	}
	return &gatewayv1.ListRoutesResponse{Routes: routesOf(v, s.g.stats)}, nil
}

func (s grpcService) Reload(ctx context.Context, _ *gatewayv1.ReloadRequest) (*gatewayv1.ReloadResponse, error) {
	t := s.g.acquire()
	_, err := s.g.principal(ctx, t, config.Access{Roles: []string{"admin"}})
	t.release()
	if err != nil {
		return nil, err
	}
	cfg, err := s.g.Reload()
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &gatewayv1.ReloadResponse{Versions: sortedKeys(cfg.Versions)}, nil
}

// principal authenticates a gRPC caller against an access rule.
func (g *Gateway) principal(ctx context.Context, t *table, access config.Access) (socket.Principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	p, present, err := t.auth.Authenticate(metadataValue(md, "authorization"), metadataValue(md, "x-api-key"))
	if err == nil {
		err = auth.Allow(access, p, present)
	}
	if err != nil {
		e := socket.AsError(err)
		c := codes.Unauthenticated
		if e.Code == socket.CodePermissionDenied {
			c = codes.PermissionDenied
		}
		return p, status.Error(c, e.Message)
	}
	return p, nil
}

// routesOf lists a version's routes for ListRoutes and the OpenAPI document.
func routesOf(v *config.Version, stats *observe.Stats) []*gatewayv1.Route {
	var out []*gatewayv1.Route
	for _, res := range v.Resources {
		for _, rt := range res.Routes {
			path := routePath(v.Name, res.Name, rt)
			r := &gatewayv1.Route{Method: rt.Method, Path: path, Access: accessString(rt.Access), Stats: stats.Of(rt.Method + " " + path)}
			if len(rt.Pipeline) == 0 {
				r.Service, r.Action = rt.Service, rt.Action
			}
			for _, st := range rt.Pipeline {
				for _, s := range append([]*config.Step{st}, st.Parallel...) {
					if s.Action != "" {
						r.Pipeline = append(r.Pipeline, s.Service+"."+s.Action)
					}
				}
			}
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *gatewayv1.Route) int {
		return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method)
	})
	return out
}

// routePath is a route's path template, e.g. /v1/orders/{id}/pay.
func routePath(version, resource string, rt *config.Route) string {
	base := "/" + version + "/" + resource
	switch rt.Form {
	case config.FormItem:
		return base + "/{id}"
	case config.FormItemAction:
		return base + "/{id}/" + rt.Segment
	case config.FormCollectionAction:
		return base + "/" + rt.Segment
	}
	return base
}

func accessString(a config.Access) string {
	switch {
	case a.Anonymous:
		return "anonymous"
	case len(a.Roles) > 0:
		return fmt.Sprintf("roles:%s", strings.Join(a.Roles, ","))
	}
	return "authenticated"
}

// gatewayServicePrefix starts the full names of GatewayService's methods.
const gatewayServicePrefix = "/" + gatewayServiceName + "/"

// observeUnary is the gRPC edge of GatewayService's calls (not health or
// reflection): each is a request the observers are told of.
func (g *Gateway) observeUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !strings.HasPrefix(info.FullMethod, gatewayServicePrefix) {
			return handler(ctx, req)
		}
		r := g.obs.NewRecord(observe.ProtocolGRPC, info.FullMethod)
		ctx = r.Begin(grpcTraceContext(ctx))
		resp, err := handler(observe.NewContext(ctx, r), req)
		r.GRPCCode = status.Code(err).String()
		switch {
		case err != nil:
			e := socket.FromStatus(err)
			r.Status, r.Code = httpStatus(e.Code), string(e.Code)
		case r.Status == 0:
			r.Status = http.StatusOK
		}
		r.End(ctx)
		return resp, err
	}
}

// grpcTraceContext continues the trace context of a GatewayService call's
// metadata, unless ctx is in a span already (Invoke's REST binding).
func grpcTraceContext(ctx context.Context) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		return otel.GetTextMapPropagator().Extract(ctx, metadataCarrier(md))
	}
	return ctx
}

// metadataCarrier reads gRPC metadata as a propagation carrier.
type metadataCarrier metadata.MD

var _ propagation.TextMapCarrier = metadataCarrier{}

func (c metadataCarrier) Get(key string) string { return metadataValue(metadata.MD(c), key) }

func (c metadataCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
