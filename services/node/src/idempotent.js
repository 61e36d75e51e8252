// Idempotent writes (docs/protocol.md §7): a write sent again with the same
// idempotency key answers the first result, marked replayed, and changes
// nothing; the key with another request is CONFLICT, reason
// idempotency_key_reused. This helper keeps the keys in memory, which
// is right for a single process that loses its state with its keys;
// services with a database keep them in the write's transaction.

import { canonicalJSON } from "./coalesce.js";
import { Codes, Reasons, SocketError } from "./errors.js";

/** @typedef {import("../index.js").Handler} Handler */

/**
 * idempotent wraps a write's handler so that each (principal, idempotency
 * key) applies at most once. Requests without a key run as they are. A
 * request whose key is still running waits for it, then answers its
 * result (replayed) or, when it failed, runs itself. At most maxKeys keys
 * are kept (default 100000); the oldest are forgotten first.
 * @param {Handler} fn
 * @param {{maxKeys?: number}} [opts]
 * @returns {Handler}
 */
export function idempotent(fn, opts = {}) {
  const maxKeys = opts.maxKeys ?? 100_000;
  /** @type {Map<string, {fingerprint: string, json: string}>} */
  const applied = new Map();
  /** @type {Map<string, Promise<unknown>>} */
  const running = new Map();
  return async (req, ctx) => {
    const idem = ctx.meta.idempotencyKey;
    if (!idem) {
      return fn(req, ctx);
    }
    const key = JSON.stringify([ctx.meta.principal.subject, idem]);
    const fingerprint = canonicalJSON([req.action, req.id, req.body]);
    for (;;) {
      const rec = applied.get(key);
      if (rec) {
        if (rec.fingerprint !== fingerprint) {
          throw new SocketError(Codes.CONFLICT, "the Idempotency-Key was used with a different request", {
            reason: Reasons.IDEMPOTENCY_KEY_REUSED,
          });
        }
        ctx.markReplayed();
        return JSON.parse(rec.json);
      }
      const first = running.get(key);
      if (!first) {
        break;
      }
      await first.catch(() => {});
    }
    const run = (async () => {
      const result = await fn(req, ctx);
      const json = JSON.stringify(result === undefined ? null : result);
      if (applied.size >= maxKeys) {
        const oldest = applied.keys().next();
        if (!oldest.done) {
          applied.delete(oldest.value);
        }
      }
      applied.set(key, { fingerprint, json });
      return JSON.parse(json);
    })();
    running.set(key, run);
    try {
      return await run;
    } finally {
      running.delete(key);
    }
  };
}
