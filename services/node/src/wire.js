// The socket protocol on the wire: the gRPC service definitions (written
// by hand for @grpc/grpc-js over the code buf generates into gen/es), and
// the frames the server sends.

import { create, fromBinary, fromJson, toBinary, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  CallRequestSchema,
  CallResponseSchema,
  ConnectRequestSchema,
  ConnectResponseSchema,
  DescribeRequestSchema,
  DescribeResponseSchema,
} from "../../../gen/es/streamgate/socket/v1/socket_pb.js";
import { Codes, isCode } from "./errors.js";
import { decodeConnectRequest, encodeRawAnswer } from "./frames.js";

/** Metadata a service sends once it accepted a stream: its instance id. */
export const METADATA_INSTANCE = "streamgate-instance";

/**
 * identity passes frames the server encoded itself (see encodeFrame).
 * @param {Buffer} b
 */
const identity = (b) => b;

/**
 * @template T
 * @param {import("@bufbuild/protobuf").DescMessage} schema
 * @returns {{serialize: (m: any) => Buffer, deserialize: (b: Buffer) => any}}
 */
function codec(schema) {
  return {
    serialize: (m) => Buffer.from(toBinary(schema, create(schema, m))),
    deserialize: (b) => fromBinary(schema, b),
  };
}

// Request and cancel frames, the hot ones, are decoded by hand (frames.js).
const connectRequest = {
  ...codec(ConnectRequestSchema),
  deserialize: (/** @type {Buffer} */ b) => decodeConnectRequest(b) ?? fromBinary(ConnectRequestSchema, b),
};
const connectResponse = codec(ConnectResponseSchema);
const callRequest = codec(CallRequestSchema);
const callResponse = codec(CallResponseSchema);
const describeRequest = codec(DescribeRequestSchema);
const describeResponse = codec(DescribeResponseSchema);

/**
 * The streamgate.socket.v1.SocketService definition. Connect's responses
 * are written already encoded (Buffers from encodeFrame), so that a frame
 * that cannot be sent fails its own request, never the stream.
 * @type {import("@grpc/grpc-js").ServiceDefinition}
 */
export const socketService = {
  Connect: {
    path: "/streamgate.socket.v1.SocketService/Connect",
    requestStream: true,
    responseStream: true,
    requestSerialize: connectRequest.serialize,
    requestDeserialize: connectRequest.deserialize,
    responseSerialize: identity,
    responseDeserialize: connectResponse.deserialize,
  },
  Call: {
    path: "/streamgate.socket.v1.SocketService/Call",
    requestStream: false,
    responseStream: false,
    requestSerialize: callRequest.serialize,
    requestDeserialize: callRequest.deserialize,
    responseSerialize: callResponse.serialize,
    responseDeserialize: callResponse.deserialize,
  },
  Describe: {
    path: "/streamgate.socket.v1.SocketService/Describe",
    requestStream: false,
    responseStream: false,
    requestSerialize: describeRequest.serialize,
    requestDeserialize: describeRequest.deserialize,
    responseSerialize: describeResponse.serialize,
    responseDeserialize: describeResponse.deserialize,
  },
};

/**
 * The client side of the same definition, for tests and tools: Connect
 * encodes and decodes both ways.
 * @type {import("@grpc/grpc-js").ServiceDefinition}
 */
export const socketClientService = {
  ...socketService,
  Connect: { ...socketService.Connect, responseSerialize: connectResponse.serialize },
};

/**
 * errorToProto is the wire form of an error: a code outside the standard
 * set goes out as INTERNAL; details that do not encode as a JSON object are
 * dropped rather than failing the answer.
 * @param {{code: string, message: string, details?: Record<string, unknown>}} e
 */
export function errorToProto(e) {
  /** @type {import("@bufbuild/protobuf").JsonObject | undefined} */
  let details;
  if (e.details && typeof e.details === "object") {
    try {
      const d = JSON.parse(JSON.stringify(e.details));
      if (d && typeof d === "object" && !Array.isArray(d) && Object.keys(d).length > 0) {
        details = d;
      }
    } catch {
      details = undefined;
    }
  }
  return {
    code: isCode(e.code) ? e.code : Codes.INTERNAL,
    message: typeof e.message === "string" ? e.message : "",
    details,
  };
}

/**
 * responseMessage builds a Response for a request's outcome, in the form
 * the request used: raw JSON bytes (body_raw) or a JSON value.
 * @param {bigint} id
 * @param {boolean} raw
 * @param {{json?: string, error?: {code: string, message: string, details?: Record<string, unknown>}, replayed?: boolean}} outcome
 */
export function responseMessage(id, raw, outcome) {
  if (outcome.error) {
    return { id, ok: false, outcome: { case: "error", value: errorToProto(outcome.error) }, replayed: false };
  }
  const json = outcome.json ?? "null";
  if (raw) {
    return { id, ok: true, outcome: { case: "resultRaw", value: Buffer.from(json, "utf8") }, replayed: !!outcome.replayed };
  }
  return {
    id,
    ok: true,
    outcome: { case: "result", value: fromJson(ValueSchema, JSON.parse(json)) },
    replayed: !!outcome.replayed,
  };
}

/**
 * encodeAnswer encodes the answer to a request, as
 * encodeFrame({frame: {case: "response", value: responseMessage(id, raw, outcome)}}, limit)
 * does; a result in result_raw is written without building the message.
 * @param {bigint} id
 * @param {boolean} raw
 * @param {{json?: string, error?: {code: string, message: string, details?: Record<string, unknown>}, replayed?: boolean}} outcome
 * @param {number} limit
 * @returns {{bytes: Buffer | null, problem?: string}}
 */
export function encodeAnswer(id, raw, outcome, limit) {
  if (raw && !outcome.error) {
    const bytes = encodeRawAnswer(id, outcome.json ?? "null", !!outcome.replayed, limit);
    if (bytes) {
      return { bytes };
    }
  }
  return encodeFrame({ frame: { case: "response", value: responseMessage(id, raw, outcome) } }, limit);
}

/**
 * encodeFrame encodes a ConnectResponse, refusing one over limit bytes: an
 * answer is replaced by an INTERNAL error of the same request, any other
 * frame is dropped (null). problem says why, for the log.
 * @param {any} frame a ConnectResponse init
 * @param {number} limit
 * @returns {{bytes: Buffer | null, problem?: string}}
 */
export function encodeFrame(frame, limit) {
  let bytes;
  let problem;
  try {
    bytes = Buffer.from(toBinary(ConnectResponseSchema, create(ConnectResponseSchema, frame)));
    if (bytes.length <= limit) {
      return { bytes };
    }
    problem = `the frame is ${bytes.length} bytes; the limit is ${limit}`;
  } catch {
    problem = "the frame cannot be encoded";
  }
  if (frame.frame?.case !== "response") {
    return { bytes: null, problem };
  }
  const error = { code: Codes.INTERNAL, message: `the answer could not be sent: ${problem}` };
  /** @type {any} */
  const again = { frame: { case: "response", value: responseMessage(frame.frame.value.id, false, { error }) } };
  return { bytes: Buffer.from(toBinary(ConnectResponseSchema, create(ConnectResponseSchema, again))), problem };
}

/**
 * bodyOf returns a request's body as JSON text ("" when none), or throws.
 * @param {any} payload the Request's payload oneof
 * @returns {string}
 */
export function bodyText(payload) {
  switch (payload?.case) {
    case "bodyRaw":
      return Buffer.from(payload.value.buffer, payload.value.byteOffset, payload.value.byteLength).toString("utf8");
    case "body":
      return JSON.stringify(toJson(ValueSchema, payload.value));
    default:
      return "";
  }
}
