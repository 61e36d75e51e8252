package grpcedge

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	streamgate "github.com/streamgate/streamgate"
	"github.com/streamgate/streamgate/gateway/invoke"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/gateway/rest"
	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
	"github.com/streamgate/streamgate/internal/envelope"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// ServeHTTP serves GatewayService's REST binding under /gateway/ and its
// OpenAPI document; the record of the request is in r's context
// (observe.FromContext). The paths it does not take are REST paths like
// any other (Options.Routes).
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rec := observe.FromContext(r.Context()); rec != nil {
		rec.Label = routeGatewayService
	}
	for _, s := range strings.Split(r.URL.EscapedPath(), "/") {
		if invoke.DotSegment(s) {
			rest.WriteError(w, invoke.DotSegmentsError())
			return
		}
	}
	if r.Body != nil {
		// GatewayService's REST binding decodes the body itself: bound it.
		limit := e.core.Config().HTTP.MaxBodyBytes
		if r.ContentLength > limit {
			rest.WriteEnvelope(w, invoke.StatusTooLarge, nil, invoke.BodyTooLarge(limit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	e.mux.ServeHTTP(w, r)
}

// newMux makes the REST binding's mux: envelopes for its answers and
// errors, the edge's headers forwarded as metadata and back.
func (e *Edge) newMux() (*runtime.ServeMux, error) {
	mux := runtime.NewServeMux(
		runtime.WithRoutingErrorHandler(e.notGatewayService),
		runtime.WithErrorHandler(grpcError),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{},
		}),
		runtime.WithIncomingHeaderMatcher(forwardHeader),
		runtime.WithOutgoingHeaderMatcher(answerHeader),
		runtime.WithForwardResponseRewriter(envelopeResponse),
		runtime.WithForwardResponseOption(invokeStatus),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithDisablePathLengthFallback(),
	)
	if err := mux.HandlePath(http.MethodGet, "/gateway/v1/openapi.json", serveGRPCOpenAPI); err != nil {
		return nil, err
	}
	if err := gatewayv1.RegisterGatewayServiceHandlerServer(context.Background(), mux, service{e: e}); err != nil {
		return nil, err
	}
	return mux, nil
}

// notGatewayService serves the /gateway/… requests GatewayService's
// patterns do not take as REST requests (a version may be named gateway).
func (e *Edge) notGatewayService(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, status int) {
	if (status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented) && !invoke.RESTForm(r.URL.EscapedPath()) {
		// A path GatewayService takes with another method (ListRoutes'),
		// which no REST route can have.
		rest.WriteEnvelope(w, invoke.StatusMethodNotAllowed, nil, socket.Errorf(socket.CodeNotSupported, "method %s is not supported here", r.Method))
		return
	}
	rec := observe.FromContext(ctx)
	rec.Label = "" // a REST path
	e.routes(ctx, w, r, rec)
}

// grpcError answers errors of the generated GatewayService handlers.
func grpcError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, _ *http.Request, err error) {
	var he *runtime.HTTPStatusError
	if errors.As(err, &he) {
		rest.WriteEnvelope(w, he.HTTPStatus, nil, socket.Errorf(socket.CodeInvalidArgument, "%v", he.Err))
		return
	}
	e := status.FromGRPC(err)
	if st, ok := grpcstatus.FromError(err); ok && st.Message() != "" {
		// These statuses are GatewayService's own (it runs in this
		// process): their messages are written to be shown.
		e = socket.Errorf(e.Code, "%s", st.Message()).WithCause(err)
	}
	rest.WriteError(w, e)
}

// envelopeResponse wraps GatewayService answers other than Invoke's
// (which is an envelope already) in the standard envelope.
func envelopeResponse(_ context.Context, resp proto.Message) (any, error) {
	if _, ok := resp.(*gatewayv1.InvokeResponse); ok {
		return resp, nil
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(resp)
	if err != nil {
		return nil, err
	}
	return envelope.New(b, nil), nil
}

// invokeStatus gives the REST binding of Invoke the status the route
// would have answered with.
func invokeStatus(_ context.Context, w http.ResponseWriter, resp proto.Message) error {
	if r, ok := resp.(*gatewayv1.InvokeResponse); ok && r.GetHttpStatus() != 0 {
		w.WriteHeader(int(r.GetHttpStatus()))
	}
	return nil
}

// forwardHeader passes the edge's credentials and ids to GatewayService.
func forwardHeader(key string) (string, bool) {
	switch http.CanonicalHeaderKey(key) {
	case rest.HeaderAPIKey, rest.HeaderRequestID, rest.HeaderIdempotencyKey, rest.HeaderTraceParent, rest.HeaderTraceState:
		return key, true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// answerHeader gives Invoke's REST binding the edge's own answer headers
// (Idempotent-Replayed, Retry-After) under their HTTP names.
func answerHeader(key string) (string, bool) {
	switch key {
	case metadataReplayed:
		return rest.HeaderReplayed, true
	case metadataRetryAfter:
		return rest.HeaderRetryAfter, true
	}
	return runtime.MetadataHeaderPrefix + key, true
}

// metadataValue returns the first value of a metadata key.
func metadataValue(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// serveGRPCOpenAPI serves the generated document of GatewayService.
func serveGRPCOpenAPI(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	doc, err := streamgate.GatewayOpenAPI()
	if err != nil {
		rest.WriteError(w, socket.Errorf(socket.CodeInternal, "internal error").WithCause(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}
