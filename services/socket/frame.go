package socket

import (
	"encoding/json"
	"slices"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/status"
)

// admitted is a request frame that passed admit: what the worker needs to
// run it and answer.
type admitted struct {
	action *action
	req    Request
	state  requestState // what the handler's context carries
	// raw says the body came as body_raw, so the result goes back as
	// result_raw; otherwise it goes back as a JSON value.
	raw       bool
	timeoutMs uint32
}

// admit checks a request frame against the server's actions and the
// caller's key and turns it into a handler Request. Every problem becomes a
// clear *status.Error for this frame alone.
func (s *Server) admit(key *keyring.Entry, f *socketv1.Request) (admitted, *status.Error) {
	if f == nil {
		return admitted{}, Errorf(CodeInvalidArgument, "frame without a request")
	}
	if f.GetAction() == "" {
		return admitted{}, Errorf(CodeInvalidArgument, "request %d has no action", f.GetId())
	}
	a := s.actions[f.GetAction()]
	if a == nil {
		return admitted{}, Errorf(CodeNotFound, "service %q has no action %q", s.cfg.Name, f.GetAction()).
			WithDetails(map[string]any{"action": f.GetAction(), "service": s.cfg.Name})
	}
	if !key.MayCall(a.name) {
		return admitted{}, Errorf(CodePermissionDenied, "key %q may not call %s", key.Name, a.name)
	}
	m := f.GetMeta()
	if a.versions != nil && !a.versions[m.GetApiVersion()] {
		return admitted{}, Errorf(CodeNotSupported, "%s is not supported in API version %q; supported: %v",
			a.name, m.GetApiVersion(), a.spec.versions).
			WithDetails(map[string]any{"action": a.name, "version": m.GetApiVersion(), "supported": a.spec.versions})
	}
	adm := admitted{action: a, timeoutMs: f.GetTimeoutMs()}
	adm.req.Action = a.name
	adm.req.ResourceID = f.GetResourceId()
	switch p := f.GetPayload().(type) {
	case *socketv1.Request_BodyRaw:
		adm.raw = true
		adm.req.Body = p.BodyRaw
	case *socketv1.Request_Body:
		b, err := protojson.Marshal(p.Body)
		if err != nil {
			return admitted{}, Errorf(CodeInvalidArgument, "body: %v", err)
		}
		adm.req.Body = b
	}
	if len(adm.req.Body) > s.opts.maxBody {
		return admitted{}, Errorf(CodeInvalidArgument, "body is %d bytes; the limit is %d", len(adm.req.Body), s.opts.maxBody).
			WithDetails(map[string]any{DetailReason: "body_too_large", "limit": s.opts.maxBody})
	}
	adm.req.Meta = Meta{
		APIVersion:     m.GetApiVersion(),
		Caller:         key.Name,
		Principal:      Principal{Subject: key.Name, Roles: key.Roles},
		TraceParent:    m.GetTraceparent(),
		TraceState:     m.GetTracestate(),
		IdempotencyKey: m.GetIdempotencyKey(),
		RequestID:      m.GetRequestId(),
		ReadEpoch:      m.GetReadEpoch(),
	}
	if p := m.GetPrincipal(); p.GetSubject() != "" || len(p.GetRoles()) > 0 {
		if !key.Delegate {
			return admitted{}, Errorf(CodePermissionDenied, "key %q may not act for another principal", key.Name)
		}
		adm.req.Meta.Principal = Principal{Subject: p.GetSubject(), Roles: slices.Clone(p.GetRoles())}
	}
	return adm, nil
}

// newResponse builds the response frame for a request's outcome, in the
// form the request used (see admitted.raw).
func newResponse(id uint64, raw bool, result json.RawMessage, err *status.Error) *socketv1.Response {
	if err == nil && !raw {
		var v structpb.Value
		if len(result) == 0 {
			result = json.RawMessage("null")
		}
		if perr := protojson.Unmarshal(result, &v); perr != nil {
			err = Errorf(CodeInternal, "the handler returned invalid JSON")
		} else {
			return &socketv1.Response{Id: id, Ok: true, Outcome: &socketv1.Response_Result{Result: &v}}
		}
	}
	if err != nil {
		return &socketv1.Response{Id: id, Outcome: &socketv1.Response_Error{Error: wire.ErrorToProto(err)}}
	}
	return &socketv1.Response{Id: id, Ok: true, Outcome: &socketv1.Response_ResultRaw{ResultRaw: result}}
}

// rawAnswer is the frame of a raw result (newResponse's last case) with
// its oneof wrappers and response, all in one allocation.
func rawAnswer(id uint64, result json.RawMessage) *socketv1.ConnectResponse {
	a := &struct {
		frame socketv1.ConnectResponse
		wrap  socketv1.ConnectResponse_Response
		resp  socketv1.Response
		raw   socketv1.Response_ResultRaw
	}{}
	a.raw.ResultRaw = result
	a.resp.Id, a.resp.Ok, a.resp.Outcome = id, true, &a.raw
	a.wrap.Response = &a.resp
	a.frame.Frame = &a.wrap
	return &a.frame
}

// responseFrame wraps r in the frame that carries it.
func responseFrame(r *socketv1.Response) *socketv1.ConnectResponse {
	return &socketv1.ConnectResponse{Frame: &socketv1.ConnectResponse_Response{Response: r}}
}
