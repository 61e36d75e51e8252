// Package wire is what the socket runtime and the request library share
// below their APIs: how a frame is encoded before it reaches gRPC (Encode),
// how errors and results cross in frames (ErrorToProto, ErrorFromProto,
// Result), the wire names of metadata and reasons, the keepalive and
// heartbeat timings both ends agree on, and the trace context a frame's
// meta carries (InjectTrace, EndSpan).
//
//	msg, err := wire.Encode(stream, frame, maxFrame) // a bad frame fails alone
//	res, err := wire.Result(response)                 // a result or an *status.Error
package wire
