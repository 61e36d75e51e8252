// gRPC health (grpc.health.v1.Health, docs/protocol.md §9), written by hand:
// two messages of one field each. A service answers for "" and for its
// name: SERVING while it serves, NOT_SERVING once it drains.

import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";

/** The health statuses, as grpc.health.v1 numbers them. */
export const HealthStatus = Object.freeze({ UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 });

/**
 * decodeRequest reads a HealthCheckRequest {string service = 1}.
 * @param {Buffer} b
 * @returns {{service: string}}
 */
function decodeRequest(b) {
  return { service: onlyField(b, 2, (r) => r.string(), "") };
}

/**
 * onlyField reads the one field of a message of one field: field 1, of
 * the wire type given, read by read; zero when it is absent. Other fields
 * are skipped.
 * @template T
 * @param {Buffer} b
 * @param {number} wireType
 * @param {(r: BinaryReader) => T} read
 * @param {T} zero
 * @returns {T}
 */
function onlyField(b, wireType, read, zero) {
  const r = new BinaryReader(b);
  let v = zero;
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (field === 1 && type === wireType) {
      v = read(r);
    } else {
      r.skip(type, field);
    }
  }
  return v;
}

/**
 * encodeResponse writes a HealthCheckResponse {ServingStatus status = 1}.
 * @param {{status: number}} m
 */
function encodeResponse(m) {
  const w = new BinaryWriter();
  if (m.status !== 0) {
    w.tag(1, 0).int32(m.status);
  }
  return Buffer.from(w.finish());
}

/**
 * @param {{service: string}} m
 */
function encodeRequest(m) {
  const w = new BinaryWriter();
  if (m.service !== "") {
    w.tag(1, 2).string(m.service);
  }
  return Buffer.from(w.finish());
}

/**
 * decodeResponse reads a HealthCheckResponse {ServingStatus status = 1}.
 * @param {Buffer} b
 * @returns {{status: number}}
 */
function decodeResponse(b) {
  return { status: onlyField(b, 0, (r) => r.int32(), 0) };
}

/** @type {import("@grpc/grpc-js").ServiceDefinition} */
export const healthService = {
  Check: {
    path: "/grpc.health.v1.Health/Check",
    requestStream: false,
    responseStream: false,
    requestSerialize: encodeRequest,
    requestDeserialize: decodeRequest,
    responseSerialize: encodeResponse,
    responseDeserialize: decodeResponse,
  },
  Watch: {
    path: "/grpc.health.v1.Health/Watch",
    requestStream: false,
    responseStream: true,
    requestSerialize: encodeRequest,
    requestDeserialize: decodeRequest,
    responseSerialize: encodeResponse,
    responseDeserialize: decodeResponse,
  },
};

/**
 * Health holds the serving status of each service name and answers
 * Check and Watch.
 */
export class Health {
  /** @param {string[]} names the service names answered for */
  constructor(names) {
    /** @type {Map<string, number>} */
    this.statuses = new Map(names.map((n) => [n, HealthStatus.NOT_SERVING]));
    /** @type {Set<import("@grpc/grpc-js").ServerWritableStream<any, any>>} */
    this.watchers = new Set();
  }

  /**
   * set changes every name's status and tells the watchers.
   * @param {number} status
   */
  set(status) {
    for (const n of this.statuses.keys()) {
      this.statuses.set(n, status);
    }
    for (const w of this.watchers) {
      const s = this.statuses.get(w.request.service);
      if (s !== undefined) {
        w.write({ status: s });
      }
    }
  }

  /** ends every Watch call (the server is stopping). */
  close() {
    for (const w of this.watchers) {
      w.end();
    }
    this.watchers.clear();
  }

  /** The grpc-js handlers. */
  handlers() {
    return {
      /** @type {import("@grpc/grpc-js").handleUnaryCall<{service: string}, {status: number}>} */
      Check: (call, callback) => {
        const s = this.statuses.get(call.request.service);
        if (s === undefined) {
          callback({ code: 5, details: "unknown service" }); // NOT_FOUND, as grpc-go
          return;
        }
        callback(null, { status: s });
      },
      /** @type {import("@grpc/grpc-js").handleServerStreamingCall<{service: string}, {status: number}>} */
      Watch: (call) => {
        const s = this.statuses.get(call.request.service);
        call.write({ status: s ?? HealthStatus.SERVICE_UNKNOWN });
        this.watchers.add(call);
        const done = () => this.watchers.delete(call);
        call.on("cancelled", done);
        call.on("error", done);
        call.on("close", done);
      },
    };
  }
}
