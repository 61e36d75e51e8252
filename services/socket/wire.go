package socket

import "github.com/streamgate/streamgate/services/socket/internal/wire"

// Wire names: metadata keys and detail keys that cross the socket. They are
// part of the protocol; change them only with a new protocol version.
const (
	// MetadataAuthorization carries "Bearer KEY" when a stream opens.
	MetadataAuthorization = wire.MetadataAuthorization
	// MetadataInstance is the header a service sends once it has accepted a
	// stream: the instance's unique id.
	MetadataInstance = wire.MetadataInstance

	// DetailReason is the details key that refines an error code
	// (status.DetailReason).
	DetailReason = wire.DetailReason
	// ReasonDraining marks an UNAVAILABLE answer to a frame that arrived
	// after the stream was drained: the action did not run, so the caller
	// may send it again elsewhere, even when it is a write.
	ReasonDraining = wire.ReasonDraining
	// ReasonOutcomeUnknown marks an UNAVAILABLE answer to a request whose
	// stream broke after the request was sent: the action may have run.
	ReasonOutcomeUnknown = wire.ReasonOutcomeUnknown
	// ReasonNoReadyInstance marks an UNAVAILABLE answer the client gave
	// itself: no instance of the service had a ready stream. Nothing was
	// sent.
	ReasonNoReadyInstance = wire.ReasonNoReadyInstance
	// DetailRetryAfterMs is the details key of a hint, in milliseconds, of
	// when trying again may succeed (status.DetailRetryAfterMs).
	DetailRetryAfterMs = wire.DetailRetryAfterMs
)
