// The standard errors of the socket protocol (docs/protocol.md §6): a code
// from a closed set, a message safe to show clients, and details. Anything
// else a handler throws reaches the caller as INTERNAL "internal error";
// its cause is logged, never sent.

/** The standard error codes. */
export const Codes = Object.freeze({
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  UNAUTHENTICATED: "UNAUTHENTICATED",
  PERMISSION_DENIED: "PERMISSION_DENIED",
  NOT_FOUND: "NOT_FOUND",
  ALREADY_EXISTS: "ALREADY_EXISTS",
  CONFLICT: "CONFLICT",
  FAILED_PRECONDITION: "FAILED_PRECONDITION",
  NOT_SUPPORTED: "NOT_SUPPORTED",
  RESOURCE_EXHAUSTED: "RESOURCE_EXHAUSTED",
  UNAVAILABLE: "UNAVAILABLE",
  DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED",
  CANCELED: "CANCELED",
  INTERNAL: "INTERNAL",
});

/** @type {Set<string>} */
const codeSet = new Set(Object.values(Codes));

/** Wire names of details keys and reasons (docs/protocol.md §6). */
export const Reasons = Object.freeze({
  DRAINING: "draining",
  BODY_TOO_LARGE: "body_too_large",
  UNKNOWN_FIELD: "unknown_field",
  IDEMPOTENCY_KEY_REUSED: "idempotency_key_reused",
});

/**
 * SocketError is the error that crosses a socket. Throw it from a handler to
 * choose the code; `cause` (the internal error behind it) is logged, never
 * sent.
 */
export class SocketError extends Error {
  /**
   * @param {string} code one of Codes; anything else goes out as INTERNAL
   * @param {string} message safe to show to clients
   * @param {Record<string, unknown>} [details] JSON-encodable details, e.g. {reason: "card_declined"}
   * @param {{cause?: unknown}} [options]
   */
  constructor(code, message, details, options) {
    super(message, options);
    this.name = "SocketError";
    /** @type {string} */
    this.code = code;
    /** @type {Record<string, unknown> | undefined} */
    this.details = details;
  }
}

/**
 * isCode reports whether code is one of the standard codes.
 * @param {unknown} code
 * @returns {boolean}
 */
export function isCode(code) {
  return typeof code === "string" && codeSet.has(code);
}

/**
 * asSocketError turns what a handler threw into a SocketError. A
 * SocketError is kept; the abort reason of the request's signal becomes
 * DEADLINE_EXCEEDED or CANCELED; anything else becomes INTERNAL
 * "internal error" (internal reports true: the caller logs it).
 * @param {unknown} err
 * @param {{aborted: boolean, reason: any}} [signal] an AbortSignal, or the request's Abort
 * @returns {{error: SocketError, internal: boolean}}
 */
export function asSocketError(err, signal) {
  if (err instanceof SocketError) {
    return { error: err, internal: false };
  }
  if (signal?.aborted && (err === signal.reason || isAbortError(err))) {
    return { error: abortError(signal), internal: false };
  }
  return { error: new SocketError(Codes.INTERNAL, "internal error", undefined, { cause: err }), internal: true };
}

/**
 * abortError is the error of a request whose signal aborted.
 * @param {{reason: any}} signal
 * @returns {SocketError}
 */
export function abortError(signal) {
  const r = signal.reason;
  if (r instanceof SocketError) {
    return r;
  }
  if (isAbortError(r) && r.name === "TimeoutError") {
    return new SocketError(Codes.DEADLINE_EXCEEDED, "deadline exceeded");
  }
  return new SocketError(Codes.CANCELED, "canceled");
}

/** @param {unknown} err */
function isAbortError(err) {
  return err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError");
}

/** The reason a request's signal aborts with when its deadline passes. */
export function deadlineReason() {
  return new DOMException("deadline exceeded", "TimeoutError");
}

/** The reason a request's signal aborts with when it is cancelled. */
export function cancelReason() {
  return new DOMException("canceled", "AbortError");
}

/** The answer to a request beyond the server's in-flight bound. */
export function serverBusy() {
  return new SocketError(Codes.RESOURCE_EXHAUSTED, "too many requests in flight on this server");
}
