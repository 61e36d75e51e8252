package grpcedge

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
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/gateway/observe"
	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// service implements GatewayService on the core, as the REST edge does.
type service struct {
	gatewayv1.UnimplementedGatewayServiceServer
	e *Edge
}

// Invoke runs a route as REST would. The call is the request the gRPC
// edge began (ObserveUnary); through GatewayService's REST binding, or on
// a server without that interceptor, it is a request of its own (inside
// the REST request, whose access line it fills in).
func (s service) Invoke(ctx context.Context, in *gatewayv1.InvokeRequest) (*gatewayv1.InvokeResponse, error) {
	r := observe.FromContext(ctx)
	if r == nil || r.Protocol != observe.ProtocolGRPC {
		own := s.e.obs.NewRecord(observe.ProtocolGRPC, gatewayv1.GatewayService_Invoke_FullMethodName)
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
func (s service) invoke(ctx context.Context, in *gatewayv1.InvokeRequest, r *observe.Record) (*gatewayv1.InvokeResponse, error) {
	t := s.e.core.Acquire()
	defer t.Release()
	inv := grpcInvocation(ctx, in)
	inv.Invoked(ctx, r)
	_, raw := in.GetPayload().(*gatewayv1.InvokeRequest_BodyRaw)
	if e := invokeBody(in, inv); e != nil {
		a := invoke.Failed(e)
		r.Answer(ctx, a.Status, a.Err, a.XCache, a.Replayed)
		return invokeResponse(raw, a), nil
	}
	a := s.e.core.Invoke(ctx, t, inv)
	setAnswerHeaders(ctx, a)
	out := invokeResponse(raw, a)
	if a.Err == nil && !out.GetOk() {
		r.Code, r.Status = out.GetError().GetCode(), int(out.GetHttpStatus()) // the service's result was not JSON
	}
	return out, nil
}

// grpcInvocation is the invocation an InvokeRequest makes with its
// call's metadata (credentials, ids, trace context) and deadline.
func grpcInvocation(ctx context.Context, in *gatewayv1.InvokeRequest) *invoke.Invocation {
	md, _ := metadata.FromIncomingContext(ctx)
	inv := &invoke.Invocation{
		Path:           invoke.NewPath(in.GetVersion(), in.GetResource(), in.GetId(), in.GetAction()),
		Method:         strings.ToUpper(in.GetMethod()),
		Authorization:  metadataValue(md, "authorization"),
		APIKey:         metadataValue(md, "x-api-key"),
		RequestID:      metadataValue(md, "x-request-id"),
		IdempotencyKey: in.GetIdempotencyKey(),
		TraceParent:    metadataValue(md, "traceparent"),
		TraceState:     metadataValue(md, "tracestate"),
	}
	if inv.IdempotencyKey == "" {
		inv.IdempotencyKey = metadataValue(md, "idempotency-key")
	}
	inv.SanitizeHints()
	if d, ok := ctx.Deadline(); ok {
		inv.Timeout = max(time.Until(d), time.Millisecond)
	}
	if len(in.GetQuery()) > 0 {
		inv.Query = url.Values{}
		for k, v := range in.GetQuery() {
			inv.Query.Set(k, v)
		}
	}
	return inv
}

// invokeBody checks the request's id and action segments and takes its
// body (JSON as a Struct value, or raw bytes); without a method, a call
// with a body is a POST, one without a GET.
func invokeBody(in *gatewayv1.InvokeRequest, inv *invoke.Invocation) *status.Error {
	for _, seg := range []string{in.GetId(), in.GetAction()} {
		if seg != "" && !invoke.ValidID(seg) {
			return socket.Errorf(socket.CodeInvalidArgument, "id and action must be path segments: not ., .., or containing slashes")
		}
	}
	switch p := in.GetPayload().(type) {
	case *gatewayv1.InvokeRequest_BodyRaw:
		inv.Body = p.BodyRaw
	case *gatewayv1.InvokeRequest_Body:
		b, err := protojson.Marshal(p.Body)
		if err != nil {
			return socket.Errorf(socket.CodeInvalidArgument, "body: %v", err)
		}
		inv.Body = b
	}
	if inv.Method == "" {
		inv.Method = http.MethodGet
		if len(inv.Body) > 0 {
			inv.Method = http.MethodPost
		}
	}
	return nil
}

// Metadata keys Invoke answers with: the headers of the REST edge
// (Idempotent-Replayed, Retry-After) in gRPC's form.
const (
	metadataReplayed   = "idempotent-replayed"
	metadataRetryAfter = "retry-after"
)

// setAnswerHeaders sends the REST edge's answer headers in gRPC's form:
// idempotent-replayed and retry-after.
func setAnswerHeaders(ctx context.Context, a invoke.Answer) {
	var header metadata.MD
	if a.Replayed {
		header = metadata.Pairs(metadataReplayed, "true")
	}
	if ra := a.RetryAfter(); ra > 0 {
		header = metadata.Join(header, metadata.Pairs(metadataRetryAfter, strconv.Itoa(ra)))
	}
	if header != nil {
		_ = grpc.SetHeader(ctx, header)
	}
}

// invokeResponse converts an answer, with the result in the form the
// request's body used.
func invokeResponse(raw bool, a invoke.Answer) *gatewayv1.InvokeResponse {
	out := &gatewayv1.InvokeResponse{Ok: a.Err == nil, HttpStatus: int32(a.Status)}
	switch {
	case a.Err != nil:
		out.Outcome = &gatewayv1.InvokeResponse_Error{Error: a.Err.Proto()}
	case raw:
		out.Outcome = &gatewayv1.InvokeResponse_ResultRaw{ResultRaw: a.Result}
	default:
		var v structpb.Value
		res := a.Result
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

// ListRoutes lists a version's routes with their stats, for admins.
func (s service) ListRoutes(ctx context.Context, in *gatewayv1.ListRoutesRequest) (*gatewayv1.ListRoutesResponse, error) {
	t := s.e.core.Acquire()
	defer t.Release()
	// The route table (and its stats) is for operators only.
	if err := operator(ctx, t); err != nil {
		return nil, err
	}
	v := t.Config().Versions[in.GetVersion()]
	if v == nil {
		return nil, grpcstatus.Errorf(codes.NotFound, "unknown API version %q", in.GetVersion())
	}
	return &gatewayv1.ListRoutesResponse{Routes: routesOf(v, s.e.stats)}, nil
}

// Reload re-reads the configuration file and applies it, for admins.
func (s service) Reload(ctx context.Context, _ *gatewayv1.ReloadRequest) (*gatewayv1.ReloadResponse, error) {
	t := s.e.core.Acquire()
	err := operator(ctx, t)
	t.Release()
	if err != nil {
		return nil, err
	}
	cfg, err := s.e.reload()
	if err != nil {
		return nil, grpcstatus.Error(codes.FailedPrecondition, err.Error())
	}
	return &gatewayv1.ReloadResponse{Versions: invoke.SortedKeys(cfg.Versions)}, nil
}

// operator checks that a gRPC caller is an admin, by the credentials in
// its metadata.
func operator(ctx context.Context, t *invoke.Table) error {
	md, _ := metadata.FromIncomingContext(ctx)
	_, e := t.Authorize(metadataValue(md, "authorization"), metadataValue(md, "x-api-key"), config.Access{Roles: []string{"admin"}})
	if e == nil {
		return nil
	}
	c := codes.Unauthenticated
	if e.Code == socket.CodePermissionDenied {
		c = codes.PermissionDenied
	}
	return grpcstatus.Error(c, e.Message)
}

// routesOf lists a version's routes for ListRoutes and the OpenAPI document.
func routesOf(v *config.Version, stats *observe.Stats) []*gatewayv1.Route {
	var out []*gatewayv1.Route
	for _, res := range v.Resources {
		for _, rt := range res.Routes {
			path := invoke.RouteTemplate(v.Name, res.Name, rt)
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

func accessString(a config.Access) string {
	switch {
	case a.Anonymous:
		return "anonymous"
	case len(a.Roles) > 0:
		return fmt.Sprintf("roles:%s", strings.Join(a.Roles, ","))
	}
	return "authenticated"
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
