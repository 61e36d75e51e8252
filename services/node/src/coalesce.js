// Coalescing (docs/protocol.md §8): identical reads in flight at the same
// moment share one handler run. "Identical" is what the Go runtime's key
// holds: the action, the resource id, the body in canonical JSON, the API
// version, the principal's scope (unless the action is public) and the
// read epoch.

/**
 * canonicalJSON returns a JSON value's text with object keys sorted, so
 * that bodies differing only in key order or whitespace share a key.
 * @param {unknown} v
 * @returns {string}
 */
export function canonicalJSON(v) {
  if (v === null || typeof v !== "object") {
    return JSON.stringify(v) ?? "null";
  }
  if (Array.isArray(v)) {
    return "[" + v.map(canonicalJSON).join(",") + "]";
  }
  const obj = /** @type {Record<string, unknown>} */ (v);
  return "{" + Object.keys(obj).sort().map((k) => JSON.stringify(k) + ":" + canonicalJSON(obj[k])).join(",") + "}";
}

/**
 * readKey is the key under which identical reads share a run (and a cache
 * entry).
 * @param {{action: string, id: string, body: unknown, hasBody: boolean, apiVersion: string, scope: string, readEpoch: string}} r
 * @returns {string}
 */
export function readKey(r) {
  const body = r.hasBody ? canonicalJSON(r.body) : "";
  return [r.action, r.id, r.apiVersion, r.scope, r.readEpoch, body].join("\u0000");
}

/**
 * @typedef {object} Flight
 * @property {Promise<string>} result the shared run's JSON text
 * @property {number} waiters callers still waiting
 * @property {AbortController} abort ends the run when the last waiter leaves
 */

/**
 * Flights runs identical work once for every caller waiting for it at the
 * same moment. The shared run has a signal of its own that aborts only
 * when every waiting caller has given up (a first caller that gives up
 * does not fail the others); the key is free again as soon as the run
 * ends or is abandoned.
 */
export class Flights {
  constructor() {
    /** @type {Map<string, Flight>} */
    this.flights = new Map();
  }

  /**
   * do returns run's result for key, calling run only when no run for key
   * is in flight. It rejects with signal's reason when the caller's own
   * signal aborts first.
   * @param {string} key
   * @param {AbortSignal} signal the caller's
   * @param {(signal: AbortSignal) => Promise<string>} run
   * @returns {{result: Promise<string>, shared: boolean}}
   */
  do(key, signal, run) {
    let f = this.flights.get(key);
    const shared = f !== undefined;
    if (!f) {
      const abort = new AbortController();
      /** @type {Flight} */
      const nf = { result: Promise.resolve(""), waiters: 0, abort };
      nf.result = run(abort.signal).finally(() => {
        if (this.flights.get(key) === nf) {
          this.flights.delete(key);
        }
      });
      nf.result.catch(() => {}); // every waiter handles it; none may be left
      this.flights.set(key, nf);
      f = nf;
    }
    const flight = f;
    flight.waiters++;
    let left = false;
    const leave = () => {
      if (left) {
        return;
      }
      left = true;
      flight.waiters--;
      if (flight.waiters === 0) {
        // A caller that comes while the abandoned run winds down runs
        // afresh instead of joining it and getting its cancellation.
        if (this.flights.get(key) === flight) {
          this.flights.delete(key);
        }
        flight.abort.abort(signal.reason);
      }
    };
    const result = new Promise((resolve, reject) => {
      if (signal.aborted) {
        leave();
        reject(signal.reason);
        return;
      }
      const onAbort = () => {
        leave();
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      flight.result.then(
        (v) => {
          signal.removeEventListener("abort", onAbort);
          leave();
          resolve(v);
        },
        (err) => {
          signal.removeEventListener("abort", onAbort);
          leave();
          reject(err);
        },
      );
    });
    return { result, shared };
  }

  /** How many runs are in flight. */
  get size() {
    return this.flights.size;
  }
}

/**
 * TTLCache keeps reads' results for their action's cacheTtlMs. It holds at
 * most max entries; the oldest go first.
 */
export class TTLCache {
  /** @param {number} max */
  constructor(max) {
    this.max = max;
    /** @type {Map<string, {json: string, expires: number}>} */
    this.entries = new Map();
  }

  /**
   * @param {string} key
   * @returns {string | undefined}
   */
  get(key) {
    const e = this.entries.get(key);
    if (!e) {
      return undefined;
    }
    if (e.expires <= performance.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.json;
  }

  /**
   * @param {string} key
   * @param {string} json
   * @param {number} ttlMs
   */
  set(key, json, ttlMs) {
    this.entries.delete(key);
    if (this.entries.size >= this.max) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) {
        this.entries.delete(oldest.value);
      }
    }
    this.entries.set(key, { json, expires: performance.now() + ttlMs });
  }
}
