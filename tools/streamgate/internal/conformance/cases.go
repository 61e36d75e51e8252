package conformance

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

// Case is one check of the spec.
type Case struct {
	// Section is the section of docs/protocol.md it checks.
	Section string
	// Name names it in the report and for Options.Run.
	Name string
	// Run returns nil when the service behaves as the section says.
	Run func(e *env) error
}

// standardCodes are the error codes of §6.
var standardCodes = []string{"INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND", "ALREADY_EXISTS",
	"CONFLICT", "FAILED_PRECONDITION", "NOT_SUPPORTED", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED",
	"CANCELED", "INTERNAL"}

// Limits the fixture serves with (§11 defaults).
const (
	maxBody        = 1 << 20
	maxFrame       = 4 << 20
	streamInFlight = 1024
	eventQueue     = 256
)

// Cases returns every case in the order Run runs them; drain is last.
func Cases() []Case {
	cs := []Case{
		{"2", "auth-no-key", authRefused("")},
		{"2", "auth-wrong-key", authRefused("not-the-key")},
		{"2", "auth-malformed", authMalformed},
		{"2", "auth-accepted", onStream(authAccepted)},
		{"3.1", "request-response", onStream(requestResponse)},
		{"3.2", "result-form-follows-body", onStream(resultForm)},
		{"3.3", "cancel", onStream(cancelFrame)},
		{"3.4", "subscribe-ack", subscribeAck},
		{"3.4", "subscribe-bad-topic", onStream(subscribeBadTopic)},
		{"3.4", "unsubscribe", onStream(unsubscribe)},
		{"3.5", "events-in-seq-order", eventsInOrder},
		{"3.5", "gap-marker-on-overflow", gapMarker},
		{"4", "many-in-flight-out-of-order", onStream(manyInFlight)},
		{"4", "request-id-zero-refused", onStream(idZero)},
		{"4", "duplicate-id-refused", onStream(duplicateID)},
		{"4", "empty-frame-refused", emptyFrame},
		{"4", "unknown-frame-kind-refused", unknownFrameKind},
		{"4", "undecodable-frame-ends-only-its-stream", undecodableFrame},
		{"5", "deadline", onStream(deadline)},
		{"6", "unknown-action", onStream(unknownAction)},
	}
	for _, code := range standardCodes {
		cs = append(cs, Case{"6", "error-code/" + code, errorCode(code)})
	}
	cs = append(cs,
		Case{"6", "bad-json-body", onStream(badJSON)},
		Case{"6", "unknown-body-field", onStream(unknownField)},
		Case{"7", "keyed-write-runs-once", onStream(keyedWrite)},
		Case{"7", "key-reused-with-other-body", onStream(keyReused)},
		Case{"8", "identical-reads-coalesced", onStream(readsCoalesced)},
		Case{"8", "writes-never-merged", onStream(writesNotMerged)},
		Case{"9", "describe-catalogue", describeCatalogue},
		Case{"9", "describe-needs-key", describeNeedsKey},
		Case{"9", "health-serving", healthServing},
		Case{"10", "pattern-subscription", patternSubscription},
		Case{"11", "body-too-large", onStream(bodyTooLarge)},
		Case{"11", "frame-too-large-ends-only-its-stream", frameTooLarge},
		Case{"11", "in-flight-per-stream-bound", onStream(inFlightBound)},
		Case{"11", "slow-caller-holds-up-only-itself", slowCaller},
		Case{"11", "drain", onStream(drain)},
	)
	return cs
}

// onStream is a case that runs on one stream opened with the fixture's
// key.
func onStream(run func(e *env, st *stream) error) func(e *env) error {
	return func(e *env) error {
		st, err := e.open(e.cfg.Key, false)
		if err != nil {
			return err
		}
		return run(e, st)
	}
}

// --- §2 opening and authentication

func authRefused(key string) func(e *env) error {
	return func(e *env) error {
		st, err := e.open(key, false)
		if err != nil {
			return err
		}
		return wantRefusal(e.ctx, st, codes.Unauthenticated)
	}
}

// authMalformed presents the key under another scheme.
func authMalformed(e *env) error {
	cc, err := e.conn()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	cs, err := socketv1.NewSocketServiceClient(cc).Connect(withRawAuth(ctx, "Basic "+e.cfg.Key))
	if err == nil {
		_, err = cs.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		return fmt.Errorf("want the stream refused with UNAUTHENTICATED, got %w", err)
	}
	return nil
}

// wantRefusal checks that a stream ends with code before any frame.
func wantRefusal(ctx context.Context, st *stream, code codes.Code) error {
	f, err := st.next(ctx)
	var ended *endedError
	switch {
	case f != nil:
		return fmt.Errorf("want the stream refused with %s, got a frame", code)
	case !errors.As(err, &ended):
		return fmt.Errorf("want the stream refused with %s: %w", code, err)
	case status.Code(ended.err) != code:
		return fmt.Errorf("want the stream refused with %s, got %w", code, ended.err)
	}
	return nil
}

func authAccepted(e *env, st *stream) error {
	md, err := st.header()
	if err != nil {
		return fmt.Errorf("the stream was refused: %w", err)
	}
	inst := md.Get("streamgate-instance")
	if len(inst) != 1 || inst[0] == "" {
		return fmt.Errorf("want one streamgate-instance header, got %q", inst)
	}
	d, err := e.describe()
	if err != nil {
		return err
	}
	if d.GetInstance() != inst[0] {
		return fmt.Errorf("streamgate-instance is %q but Describe's instance is %q", inst[0], d.GetInstance())
	}
	// The stream works.
	r, err := st.call(e.ctx, req("ECHO", "1", nil))
	if err != nil {
		return err
	}
	return result(r, new(any))
}
