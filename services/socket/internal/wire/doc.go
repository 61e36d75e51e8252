// Package wire is what the socket runtime (services/socket) and the
// request library (services/socket/caller) share below their APIs: how a
// frame is encoded before it reaches gRPC (Encode, sent as it is by Codec:
// a bad frame fails its own request, never the stream), how errors and
// results cross in frames (ErrorToProto, ErrorFromProto, Result), how
// bodies become JSON (EncodeBody), the wire names of metadata and
// reasons, the keepalive timings both ends agree on, the topic rules
// (CheckTopic, TopicMatches), the context key of a request's meta
// (WithMeta, MetaValue) and the trace context a frame's meta carries
// (InjectTrace, EndSpan).
//
//	msg, err := wire.Encode(frame, maxFrame) // a bad frame fails alone
//	err = stream.SendMsg(msg)                // on a stream whose codec is wire.Codec
//	res, err := wire.Result(response)        // a result or a *status.Error
package wire
