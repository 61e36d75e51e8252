// Writes that apply at most once per idempotency key, as the Go services'
// services/internal/once: the gateway derives a key per write
// ("HEX:ACTION") and sends it in the frame's meta; keyed() looks it up and
// hands the handler a Write carrying it, and the store records the key,
// with the write's result, in the same transaction as the row (memory:
// in the same synchronous step) under a unique (subject, idem_key). A
// retry with the key answers the first result, marked replayed; the key
// with another request is CONFLICT reason idempotency_key_reused.
//
//	const keyedCreate = keyed(store, (req, ctx, w) => store.create(item, w));
//
// Fingerprints are computed as Go's once.Fingerprint, so a Go and a Node
// instance sharing one database recognise each other's keys.

import { createHash } from "node:crypto";
import { SocketError, Codes, Reasons } from "@streamgate/service";

/**
 * Key names one keyed write: whose key it is, the key, and a digest of the
 * request it came with.
 * @typedef {{subject: string, id: string, fingerprint: string}} Key
 */

/**
 * Record is what is kept for an applied key: the fingerprint and the
 * write's result as JSON text.
 * @typedef {{fingerprint: string, result: string}} KeyRecord
 */

/**
 * Ledger finds the record of a key applied before.
 * @typedef {{applied: (k: Key) => Promise<KeyRecord | null> | KeyRecord | null}} Ledger
 */

/**
 * Write is what a keyed handler passes to its store: the key (none for a
 * request without one) and whether a write kept it.
 */
export class Write {
  /** @param {Key | null} key */
  constructor(key) {
    this.key = key;
    this.kept = false;
  }
}

/** A write without a key. */
export const unkeyed = () => new Write(null);

/** AppliedError is a store write's error when its key was applied already; it changed nothing. */
export class AppliedError extends Error {
  /** @param {KeyRecord} record */
  constructor(record) {
    super("the idempotency key was applied already");
    this.record = record;
  }
}

/**
 * keyed wraps a write handler (req, ctx, write) so it applies once per
 * (principal, idempotency key); the handler passes write to its store.
 * @param {Ledger} ledger
 * @param {(req: any, ctx: any, w: Write) => Promise<unknown> | unknown} fn
 * @returns {(req: any, ctx: any) => Promise<unknown>}
 */
export function keyed(ledger, fn) {
  return async (req, ctx) => {
    const id = ctx.meta.idempotencyKey;
    if (id === "") {
      return fn(req, ctx, unkeyed());
    }
    /** @type {Key} */
    const k = { subject: ctx.meta.principal.subject, id, fingerprint: fingerprint(req.action, req.id, req.body) };
    const rec = await ledger.applied(k);
    if (rec) {
      return replay(ctx, k, rec);
    }
    const w = new Write(k);
    try {
      const result = await fn(req, ctx, w);
      if (!w.kept) {
        const other = await ledger.applied(k);
        if (other) return replay(ctx, k, other);
      }
      return result;
    } catch (e) {
      if (e instanceof AppliedError) {
        return replay(ctx, k, e.record);
      }
      if (!w.kept) {
        // The run wrote nothing under the key: when a concurrent request
        // with the key did, its result is the answer.
        const other = await Promise.resolve(ledger.applied(k)).catch(() => /** @type {KeyRecord | null} */ (null));
        if (other) return replay(ctx, k, other);
      }
      throw e;
    }
  };
}

/**
 * @param {any} ctx
 * @param {Key} k
 * @param {KeyRecord} rec
 */
function replay(ctx, k, rec) {
  if (rec.fingerprint !== k.fingerprint) {
    throw new SocketError(Codes.CONFLICT, "the Idempotency-Key was used with a different request", {
      reason: Reasons.IDEMPOTENCY_KEY_REUSED,
    });
  }
  ctx.markReplayed();
  return JSON.parse(rec.result);
}

/**
 * MemoryLedger keeps a memory store's keys. Its write runs synchronously,
 * so the row and its key change together.
 */
export class MemoryLedger {
  constructor() {
    /** @type {Map<string, KeyRecord>} */
    this.records = new Map();
  }

  /** @param {Key} k */
  applied(k) {
    return this.records.get(JSON.stringify([k.subject, k.id])) ?? null;
  }

  /**
   * write runs fn, which changes the store and returns the result to keep,
   * and keeps it under w's key; when the key was applied already it
   * changes nothing and throws an AppliedError.
   * @template T
   * @param {Write} w
   * @param {() => T} fn
   * @returns {T}
   */
  write(w, fn) {
    if (!w.key) return fn();
    const id = JSON.stringify([w.key.subject, w.key.id]);
    const rec = this.records.get(id);
    if (rec) throw new AppliedError(rec);
    const result = fn();
    this.records.set(id, { fingerprint: w.key.fingerprint, result: JSON.stringify(result) });
    w.kept = true;
    return result;
  }
}

/**
 * fingerprint is Go's once.Fingerprint: sha256 over the action, the
 * resource id and the body in canonical JSON (as Go's json.Marshal writes
 * it), each prefixed by its length in bytes, in hex.
 * @param {string} action
 * @param {string} id
 * @param {unknown} body null when none
 */
export function fingerprint(action, id, body) {
  const h = createHash("sha256");
  const bodyText = body === null || body === undefined ? "" : canonicalJSON(body);
  for (const part of [action, id, bodyText]) {
    const b = Buffer.from(part, "utf8");
    h.update(`${b.length}:`);
    h.update(b);
  }
  return h.digest("hex");
}

/**
 * canonicalJSON writes v as Go's json.Marshal writes a decoded value: object
 * keys sorted by their UTF-8 bytes, no spaces, Go's string escapes.
 * @param {unknown} v
 * @returns {string}
 */
export function canonicalJSON(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return `[${v.map(canonicalJSON).join(",")}]`;
  switch (typeof v) {
    case "string":
      return goString(v);
    case "number":
      return Number.isInteger(v) && Math.abs(v) < 1e21 ? v.toFixed(0) : String(v);
    case "boolean":
      return String(v);
    case "object": {
      const keys = Object.keys(/** @type {object} */ (v)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      const o = /** @type {Record<string, unknown>} */ (v);
      return `{${keys.map((k) => `${goString(k)}:${canonicalJSON(o[k])}`).join(",")}}`;
    }
  }
  return "null";
}

const SHORT_ESCAPES = /** @type {Record<string, string>} */ ({
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\b": "\\b",
  "\f": "\\f",
});

/**
 * goString quotes s as Go's encoding/json does (HTML-safe: <, >, & escaped;
 * U+2028, U+2029 escaped; lone surrogates become U+FFFD).
 * @param {string} s
 */
function goString(s) {
  let out = '"';
  for (const ch of s.toWellFormed()) {
    const c = ch.codePointAt(0) ?? 0;
    if (SHORT_ESCAPES[ch]) out += SHORT_ESCAPES[ch];
    else if (c < 0x20 || ch === "<" || ch === ">" || ch === "&" || c === 0x2028 || c === 0x2029) {
      out += "\\u" + c.toString(16).padStart(4, "0");
    } else out += ch;
  }
  return out + '"';
}
