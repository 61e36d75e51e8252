// The conformance fixture (docs/protocol.md §12) on the Node runtime:
//
//   node services/node/examples/conformance.js -addr 127.0.0.1:PORT -key KEY
//
// The key may also come from STREAMGATE_CONFORMANCE_KEY. It is the one key
// accepted, and it delegates. `streamgate conformance` runs its cases
// against this service; DRAIN (last) shuts it down, and it exits 0.
import { createServer, idempotent, jsonLogger, SocketError, Codes } from "@streamgate/service";

/**
 * flag returns the value of -name or --name (as "-name V" or "-name=V").
 * @param {string} name
 */
function flag(name) {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i].replace(/^--?/, "-");
    if (a === `-${name}`) return args[i + 1];
    if (a.startsWith(`-${name}=`)) return a.slice(name.length + 2);
  }
  return undefined;
}

const addr = flag("addr") ?? "127.0.0.1:0";
const key = flag("key") ?? process.env.STREAMGATE_CONFORMANCE_KEY;
if (!key) {
  console.error("conformance: give the key with -key KEY or STREAMGATE_CONFORMANCE_KEY");
  process.exit(2);
}

/**
 * bad is the INVALID_ARGUMENT answer to a body the action does not take.
 * @param {string} action
 * @param {string} want
 */
const bad = (action, want) => new SocketError(Codes.INVALID_ARGUMENT, `${action}: the body is ${want}`);

/**
 * obj returns the body as an object, or throws INVALID_ARGUMENT.
 * @param {string} action
 * @param {unknown} body
 * @param {string} want
 * @returns {Record<string, any>}
 */
function obj(action, body, want) {
  if (body === null) return {};
  if (typeof body !== "object" || Array.isArray(body)) throw bad(action, want);
  return /** @type {Record<string, any>} */ (body);
}

/**
 * ms reads a body's "ms": a whole number of milliseconds, 0 when absent.
 * @param {string} action
 * @param {Record<string, any>} b
 */
function ms(action, b) {
  const v = b.ms ?? 0;
  if (!Number.isInteger(v) || v < 0 || v > 600_000) throw bad(action, `{"ms": n} with 0 <= n <= 600000`);
  return v;
}

/**
 * sleep waits ms, or rejects with the signal's reason when it aborts first.
 * @param {number} n
 * @param {AbortSignal} signal
 * @returns {Promise<void>}
 */
function sleep(n, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, n);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** @type {Map<string, number>} */
const runs = new Map();
/** @type {Map<string, number>} */
const counters = new Map();
let cancelled = 0;

const server = createServer({
  name: "conformance",
  version: "1.0.0",
  keys: [{ name: "conformance", secret: key, delegate: true }],
  logger: jsonLogger(),
});

server.handle(
  "ECHO",
  (req, ctx) => ({
    id: req.id,
    body: req.body,
    meta: {
      api_version: ctx.meta.apiVersion,
      subject: ctx.meta.principal.subject,
      roles: ctx.meta.principal.roles,
      idempotency_key: ctx.meta.idempotencyKey,
      request_id: ctx.meta.requestId,
    },
  }),
  { read: true, doc: "answers the request as it arrived" },
);

server.handle(
  "SLOW",
  async (req, ctx) => {
    const n = ms("SLOW", obj("SLOW", req.body, `{"ms": n}`));
    try {
      await sleep(n, ctx.signal);
    } catch (e) {
      cancelled++;
      throw e;
    }
    return { slept_ms: n };
  },
  { read: true, fields: ["ms"], doc: "waits body.ms, or until cancelled or the deadline passes" },
);

server.handle(
  "FAIL",
  (req) => {
    const b = obj("FAIL", req.body, `{"code": CODE, "message": s, "reason": s?}`);
    if (typeof b.code !== "string" || (b.message !== undefined && typeof b.message !== "string")) {
      throw bad("FAIL", `{"code": CODE, "message": s, "reason": s?}`);
    }
    if (!Object.values(Codes).includes(/** @type {any} */ (b.code))) {
      throw new SocketError(Codes.INVALID_ARGUMENT, `code ${JSON.stringify(b.code)} is not a standard code`);
    }
    const details = typeof b.reason === "string" && b.reason !== "" ? { reason: b.reason } : undefined;
    throw new SocketError(b.code, b.message ?? "", details);
  },
  { read: true, fields: ["code", "message", "reason"], doc: "answers the error the body names" },
);

server.handle(
  "COUNT",
  idempotent((req) => {
    const b = obj("COUNT", req.body, `{"name": s}`);
    if (typeof b.name !== "string" || b.name === "") throw bad("COUNT", `{"name": s}`);
    const value = (counters.get(b.name) ?? 0) + 1;
    counters.set(b.name, value);
    return { name: b.name, value };
  }),
  { fields: ["name"], doc: "adds 1 to counter body.name, once per idempotency key" },
);

server.handle(
  "PEEK",
  async (req, ctx) => {
    const n = ms("PEEK", obj("PEEK", req.body, `{"ms": n}`));
    runs.set(req.id, (runs.get(req.id) ?? 0) + 1);
    await sleep(n, ctx.signal);
    return { key: req.id, runs: runs.get(req.id) };
  },
  { read: true, fields: ["ms"], doc: "counts its handler runs per id, after waiting body.ms" },
);

server.handle(
  "STATS",
  () => ({ runs: Object.fromEntries(runs), counters: Object.fromEntries(counters), cancelled }),
  { read: true, fields: [], doc: "the fixture's counters" },
);

server.handle(
  "PUBLISH",
  (req) => {
    const b = obj("PUBLISH", req.body, `{"topic": s, "count": n, "data": any, "visibility": {...}}`);
    const count = b.count ?? 0;
    if (typeof b.topic !== "string" || !Number.isInteger(count) || count < 0 || count > 100_000) {
      throw bad("PUBLISH", `{"topic": s, "count": n (0 to 100000), "data": any, "visibility": {...}}`);
    }
    const v = b.visibility ?? {};
    const visibility = { public: !!v.public, subjects: strings(v.subjects), roles: strings(v.roles) };
    for (let i = 1; i <= count; i++) {
      server.publish(b.topic, { i, data: b.data ?? null }, visibility);
    }
    return { published: count };
  },
  { fields: ["topic", "count", "data", "visibility"], doc: "publishes body.count events on body.topic" },
);

server.handle(
  "DRAIN",
  () => {
    setImmediate(() => void server.shutdown());
    return { draining: true };
  },
  { fields: [], doc: "answers, then shuts the service down as SIGTERM would" },
);

/**
 * @param {unknown} v
 * @returns {string[]}
 */
function strings(v) {
  return Array.isArray(v) ? v.filter((s) => typeof s === "string") : [];
}

const bound = await server.listen(addr);
console.log(JSON.stringify({ time: new Date().toISOString(), level: "INFO", msg: "serving", service: "conformance", addr: bound }));
await server.closed;
process.exit(0);
