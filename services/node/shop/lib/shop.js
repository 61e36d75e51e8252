// What the shop's Go services share (services/internal: access, actions,
// paging, events), for the Node ones: admin-only actions, database
// outages answered UNAVAILABLE, paging, and publishing an object's state
// after each change.

import { SocketError, Codes } from "@streamgate/service";
import { isUnreachable } from "./pg.js";

/** The page sizes of LIST actions (paging.Default, paging.Max). */
export const PAGE_DEFAULT = 50;
export const PAGE_MAX = 1000;

/**
 * pageSize validates a LIST body's page_size and applies the default.
 * @param {number | undefined} n
 */
export function pageSize(n = 0) {
  if (n < 0 || n > PAGE_MAX) {
    throw new SocketError(Codes.INVALID_ARGUMENT, `page_size must be between 0 and ${PAGE_MAX}, got ${n}`, { field: "page_size" });
  }
  return n === 0 ? PAGE_DEFAULT : n;
}

/**
 * cut returns the first size rows and the next page token: the key of the
 * last row on the page when rows holds more than size, else "".
 * @template T
 * @param {T[]} rows
 * @param {number} size
 * @param {(row: T) => string} key
 * @returns {[T[], string]}
 */
export function cut(rows, size, key) {
  if (rows.length > size) {
    const page = rows.slice(0, size);
    return [page, key(page[size - 1])];
  }
  return [rows, ""];
}

/**
 * adminOnly refuses callers without the admin role (PERMISSION_DENIED
 * "only admins may WHAT") before the handler reads the body.
 * @param {string} what
 * @param {(req: any, ctx: any) => unknown} fn
 */
export function adminOnly(what, fn) {
  return (/** @type {any} */ req, /** @type {any} */ ctx) => {
    if (!ctx.meta.principal.roles.includes("admin")) {
      throw new SocketError(Codes.PERMISSION_DENIED, `only admins may ${what}`);
    }
    return fn(req, ctx);
  };
}

/** retryAfterMs is how long a caller is told to wait after an outage. */
const retryAfterMs = 1000;

/**
 * outagesUnavailable answers a handler's errors that say the database
 * cannot be reached with UNAVAILABLE, reason database_unavailable; the
 * cause is logged by the runtime, never sent.
 * @param {(req: any, ctx: any) => unknown} fn
 */
export function outagesUnavailable(fn) {
  return async (/** @type {any} */ req, /** @type {any} */ ctx) => {
    try {
      return await fn(req, ctx);
    } catch (e) {
      if (!(e instanceof SocketError) && isUnreachable(e)) {
        throw new SocketError(
          Codes.UNAVAILABLE,
          "the service's database is unavailable; try again later",
          { reason: "database_unavailable", retry_after_ms: retryAfterMs },
          { cause: e },
        );
      }
      throw e;
    }
  };
}

/**
 * Publisher publishes objects' states on "{resource}/{id}" topics after
 * their changes, as services/internal/events: the state as a read returns
 * it now, or {"id", "deleted": true}. Loads and publishes of one topic run
 * one at a time, in order, so a later event never carries an older state.
 */
export class Publisher {
  /**
   * @param {{publish: (topic: string, data: unknown, vis?: any) => number}} server
   * @param {(msg: string, fields: Record<string, unknown>) => void} [warn]
   */
  constructor(server, warn = () => {}) {
    this.server = server;
    this.warn = warn;
    /** @type {Map<string, Promise<void>>} the last publish of each topic */
    this.tails = new Map();
  }

  /**
   * changed publishes resource/id's state as load reads it (null: deleted),
   * visible as vis says; it resolves once published. A load failing
   * publishes nothing.
   * @param {string} resource
   * @param {string} id
   * @param {{public?: boolean, subjects?: string[], roles?: string[]}} vis
   * @param {() => Promise<unknown>} load
   */
  changed(resource, id, vis, load) {
    if (id === "") return Promise.resolve();
    const topic = `${resource}/${id}`;
    const prev = this.tails.get(topic) ?? Promise.resolve();
    const next = prev.then(async () => {
      try {
        const v = await load();
        this.server.publish(topic, v === null ? { id, deleted: true } : v, vis);
      } catch (e) {
        this.warn("publish failed", { topic, err: String(e) });
      }
    });
    this.tails.set(topic, next);
    void next.then(() => {
      if (this.tails.get(topic) === next) this.tails.delete(topic);
    });
    return next;
  }
}
