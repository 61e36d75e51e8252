package wire

import (
	"time"

	"github.com/streamgate/streamgate/status"
)

// Wire names: metadata keys and detail keys that cross the socket. They are
// part of the protocol; change them only with a new protocol version.
const (
	// MetadataAuthorization carries "Bearer KEY" when a stream opens.
	MetadataAuthorization = "authorization"
	// MetadataInstance is the header a service sends once it has accepted a
	// stream: the instance's unique id.
	MetadataInstance = "streamgate-instance"

	// DetailReason is the details key that refines an error code
	// (status.DetailReason).
	DetailReason = status.DetailReason
	// ReasonDraining marks an UNAVAILABLE answer to a frame that arrived
	// after the stream was drained: the action did not run, so the caller
	// may send it again elsewhere, even when it is a write.
	ReasonDraining = "draining"
	// ReasonOutcomeUnknown marks an UNAVAILABLE answer to a request whose
	// stream broke after the request was sent: the action may have run.
	ReasonOutcomeUnknown = "outcome_unknown"
	// ReasonNoReadyInstance marks an UNAVAILABLE answer the client gave
	// itself: no instance of the service had a ready stream. Nothing was
	// sent.
	ReasonNoReadyInstance = "no_ready_instance"
	// DetailRetryAfterMs is the details key of a hint, in milliseconds, of
	// when trying again may succeed (status.DetailRetryAfterMs).
	DetailRetryAfterMs = status.DetailRetryAfterMs
)

// Keepalive timings both ends agree on. A client pings a connection that
// has been silent for KeepaliveTime (gRPC's minimum) and drops it when the
// ping or any data it sent goes unacknowledged for KeepaliveTimeout (gRPC
// sets TCP_USER_TIMEOUT to it), so a black-holed connection with requests
// on it fails within KeepaliveTimeout. A silent connection is found sooner
// by the client's heartbeat. Servers accept pings as often as
// KeepaliveMinTime.
const (
	KeepaliveTime    = 10 * time.Second
	KeepaliveTimeout = 3 * time.Second
	KeepaliveMinTime = 5 * time.Second
)

// DefaultMaxFrame is the default bound of one gRPC message on the stream,
// in bytes, on both ends.
const DefaultMaxFrame = 4 << 20
