// Package wire is what the socket runtime (services/socket) and the
// request library (services/socket/caller) share below their APIs: how a
// frame is encoded before it reaches gRPC (Encode: a bad frame fails its
// own request, never the stream), how errors and results cross in frames
// (ErrorToProto, ErrorFromProto, Result), how bodies become JSON
// (EncodeBody), the wire names of metadata and reasons, the keepalive
// timings both ends agree on, the topic rules (CheckTopic, TopicMatches),
// the context key of a request's meta (WithMeta, MetaValue) and the trace
// context a frame's meta carries (InjectTrace, EndSpan).
//
//	msg, err := wire.Encode(stream, frame, maxFrame) // a bad frame fails alone
//	res, err := wire.Result(response)                 // a result or a *status.Error
package wire
