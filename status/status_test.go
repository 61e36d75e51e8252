package status_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/status"
)

// errSQL stands for a driver error that names an address.
var errSQL = errors.New("sql: dial tcp 127.0.0.1:5432: connect: connection refused")

func TestErrorfFormatsLikeSprintf(t *testing.T) {
	t.Parallel()
	e := status.Errorf(status.CodeNotFound, "user %q not found (%d)", "42", 7)
	if e.Message != `user "42" not found (7)` || errors.Unwrap(e) != nil {
		t.Fatalf("Errorf = %q, cause %v", e.Message, errors.Unwrap(e))
	}
	withCause := e.WithCause(errSQL)
	if withCause.Message != e.Message || errors.Unwrap(e) != nil || !errors.Is(withCause, errSQL) {
		t.Fatal("WithCause changed the message or the original")
	}
	var target *status.Error
	if !errors.As(fmt.Errorf("outer: %w", withCause), &target) || target.Code != status.CodeNotFound {
		t.Fatal("errors.As does not find the *Error")
	}
}

func TestAsError(t *testing.T) {
	t.Parallel()
	notFound := status.Errorf(status.CodeNotFound, "no user 9")
	tests := []struct {
		name    string
		err     error
		code    status.Code
		message string
	}{
		{"nil", nil, "", ""},
		{"an *Error", notFound, status.CodeNotFound, "no user 9"},
		{"a wrapped *Error", fmt.Errorf("load: %w", notFound), status.CodeNotFound, "no user 9"},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), status.CodeDeadlineExceeded, "deadline exceeded"},
		{"canceled", context.Canceled, status.CodeCanceled, "canceled"},
		{"anything else", errSQL, status.CodeInternal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := status.AsError(tt.err)
			if status.CodeOf(tt.err) != tt.code {
				t.Fatalf("CodeOf = %q, want %q", status.CodeOf(tt.err), tt.code)
			}
			if tt.err == nil {
				if e != nil {
					t.Fatalf("AsError(nil) = %v", e)
				}
				return
			}
			if e.Code != tt.code || e.Message != tt.message {
				t.Fatalf("AsError = %v, want %s: %s", e, tt.code, tt.message)
			}
			if e.Code != status.CodeNotFound && !errors.Is(e, tt.err) {
				t.Fatalf("the cause %v is lost", tt.err)
			}
		})
	}
}

func TestCodes(t *testing.T) {
	t.Parallel()
	if len(status.Codes()) != 13 {
		t.Errorf("%d codes, want the 13 of the protocol", len(status.Codes()))
	}
	for _, c := range status.Codes() {
		if !c.Valid() {
			t.Errorf("%s is listed by Codes but not valid", c)
		}
	}
	for _, c := range []status.Code{"", "some_reason", "not_found", "TEAPOT"} {
		if c.Valid() {
			t.Errorf("%q is valid", c)
		}
	}
}

func TestReason(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		details map[string]any
		want    string
	}{
		{nil, ""},
		{map[string]any{status.DetailReason: "order_paid"}, "order_paid"},
		{map[string]any{status.DetailReason: 402}, ""},
		{map[string]any{"field": "name"}, ""},
	} {
		if got := status.Errorf(status.CodeFailedPrecondition, "x").WithDetails(tt.details).Reason(); got != tt.want {
			t.Errorf("Reason of %v = %q, want %q", tt.details, got, tt.want)
		}
	}
}

// TestProto round-trips errors through their wire form: the cause stays
// behind, text that is not UTF-8 is repaired, details that cannot be a
// JSON object are dropped rather than failing the answer.
func TestProto(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   *status.Error
		want *status.Error
	}{
		{"plain", status.Errorf(status.CodeNotFound, "no user 9"), status.Errorf(status.CodeNotFound, "no user 9")},
		{"details",
			status.Errorf(status.CodeFailedPrecondition, "paid").WithDetails(map[string]any{status.DetailReason: "order_paid", "n": 2}),
			status.Errorf(status.CodeFailedPrecondition, "paid").WithDetails(map[string]any{status.DetailReason: "order_paid", "n": float64(2)})},
		{"cause stays behind", status.Errorf(status.CodeUnavailable, "down").WithCause(errSQL), status.Errorf(status.CodeUnavailable, "down")},
		{"bad UTF-8", status.Errorf(status.CodeInvalidArgument, "name \xff").WithDetails(map[string]any{"v": "\xfe"}),
			status.Errorf(status.CodeInvalidArgument, "name \uFFFD").WithDetails(map[string]any{"v": "\uFFFD"})},
		{"unencodable details", status.Errorf(status.CodeInternal, "x").WithDetails(map[string]any{"f": math.Inf(1)}), status.Errorf(status.CodeInternal, "x")},
		{"a code outside the set passes as sent", status.Errorf("TEAPOT", "x"), status.Errorf("TEAPOT", "x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := status.FromProto(tt.in.Proto())
			if got.Code != tt.want.Code || got.Message != tt.want.Message || fmt.Sprint(got.Details) != fmt.Sprint(tt.want.Details) || got.Unwrap() != nil {
				t.Fatalf("round trip = %v %v (cause %v), want %v %v", got, got.Details, got.Unwrap(), tt.want, tt.want.Details)
			}
		})
	}
	if e := status.FromProto(&socketv1.Error{Code: "NOT_FOUND"}); e.Details != nil {
		t.Fatalf("no details decode as %v, want nil", e.Details)
	}
}

// TestFromGRPC: a transport status keeps its code and never its text,
// which may name addresses and dial errors; that stays in the cause.
func TestFromGRPC(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		code status.Code
	}{
		{"unavailable", grpcstatus.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`), status.CodeUnavailable},
		{"unimplemented", grpcstatus.Error(codes.Unimplemented, "unknown service socket.v1.SocketService at 10.0.0.7:9000"), status.CodeNotSupported},
		{"unknown", grpcstatus.Error(codes.Unknown, "panic at 10.0.0.7"), status.CodeInternal},
		{"a code without a match", grpcstatus.Error(codes.DataLoss, "disk 10.0.0.7"), status.CodeUnavailable},
		{"not a status", errSQL, status.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := status.FromGRPC(tt.err)
			if e.Code != tt.code || e.Message == "" || strings.ContainsAny(e.Message, ":0123456789") {
				t.Fatalf("FromGRPC = %q %q, want %s with a generic message", e.Code, e.Message, tt.code)
			}
			if !errors.Is(e, tt.err) {
				t.Fatal("the cause is lost")
			}
		})
	}
}
