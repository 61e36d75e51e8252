package socket

import "github.com/streamgate/streamgate/status"

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
