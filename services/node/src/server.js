// The service side of the streamgate socket protocol (docs/protocol.md), as
// the Go runtime (services/socket) does it: a server holds actions, runs
// request frames from many streams at once, and drains gracefully.

import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { Keyring, mayCall } from "./keys.js";
import { Codes, Reasons, SocketError, asSocketError, deadlineReason, serverBusy } from "./errors.js";
import { socketService, responseMessage, bodyText } from "./wire.js";
import { Flights, TTLCache, readKey } from "./coalesce.js";
import { Events, checkTopic } from "./events.js";
import { Health, HealthStatus, healthService } from "./health.js";
import { ActionStats, duration } from "./stats.js";
import { ServerStream } from "./stream.js";
import { silentLogger } from "./log.js";
import { Abort } from "./abort.js";

const ACTION_NAME = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/;

/** The socket service's name, as health reports it beside the service's. */
const SOCKET_SERVICE = "streamgate.socket.v1.SocketService";

const DEFAULTS = {
  maxInFlightPerStream: 1024,
  maxInFlight: 16384,
  maxBodyBytes: 1 << 20,
  maxFrameBytes: 4 << 20,
  drainTimeoutMs: 10_000,
  cacheEntries: 10_000,
};

/**
 * @typedef {import("../index.js").ServerConfig} ServerConfig
 * @typedef {import("../index.js").ActionOptions} ActionOptions
 * @typedef {import("../index.js").Handler} Handler
 * @typedef {import("../index.js").Meta} Meta
 * @typedef {import("./keys.js").KeyEntry} KeyEntry
 */

/**
 * @typedef {object} Action
 * @property {string} name
 * @property {Handler} fn
 * @property {boolean} read
 * @property {boolean} idempotent
 * @property {boolean} public
 * @property {number} cacheTtlMs
 * @property {number} timeoutMs
 * @property {string[]} versions empty: every version
 * @property {string} doc
 * @property {Set<string> | null} fields null: any body
 * @property {ActionStats} stats
 */

/**
 * Admitted is a request frame that passed admit: what running it needs.
 * @typedef {object} Admitted
 * @property {Action} action
 * @property {string} id the resource id
 * @property {unknown} body the parsed body; null when none
 * @property {boolean} hasBody
 * @property {boolean} raw the body came as body_raw, so the result goes back as result_raw
 * @property {Meta} meta
 * @property {number} timeoutMs the frame's
 */

/**
 * createServer returns a server with no actions.
 * @param {ServerConfig} config
 * @returns {Server}
 */
export function createServer(config) {
  return new Server(config);
}

/** Server serves registered actions over the socket protocol, with gRPC health beside it. */
export class Server {
  /** @param {ServerConfig} config */
  constructor(config) {
    if (!config || typeof config.name !== "string" || config.name === "") {
      throw new TypeError("streamgate: createServer: name is required");
    }
    this.name = config.name;
    this.version = config.version ?? "";
    this.instance = config.name + "-" + randomBytes(6).toString("hex");
    this.keys = new Keyring(config.keys);
    this.log = config.logger ?? silentLogger;
    this.limits = {
      maxInFlightPerStream: config.maxInFlightPerStream ?? DEFAULTS.maxInFlightPerStream,
      maxInFlight: config.maxInFlight ?? DEFAULTS.maxInFlight,
      maxBodyBytes: config.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
      maxFrameBytes: config.maxFrameBytes ?? DEFAULTS.maxFrameBytes,
      drainTimeoutMs: config.drainTimeoutMs ?? DEFAULTS.drainTimeoutMs,
    };
    for (const [k, v] of Object.entries(this.limits)) {
      if (!Number.isInteger(v) || v < 1) {
        throw new TypeError(`streamgate: createServer: ${k} must be a positive integer`);
      }
    }
    this.coalesce = config.coalesce ?? true;
    this.signals = config.signals ?? ["SIGTERM", "SIGINT"];
    /** @type {Map<string, Action>} */
    this.actions = new Map();
    /** @type {Set<ServerStream>} */
    this.streams = new Set();
    this.flights = new Flights();
    this.cache = new TTLCache(config.cacheEntries ?? DEFAULTS.cacheEntries);
    this.events = new Events();
    this.health = new Health(["", SOCKET_SERVICE, config.name]);
    this.inFlight = 0;
    this.serving = false;
    this.draining = false;
    /** Aborted when the server stops for good: writes in flight end with it. */
    this.stopped = new AbortController();
    // Every write in flight listens on it (up to maxInFlight): no limit, so
    // that Node prints no MaxListenersExceededWarning under load.
    setMaxListeners(0, this.stopped.signal);
    /** @type {Promise<void> | null} */
    this.shutdownPromise = null;
    /** @type {(() => void) | null} */
    this.onIdle = null;
    /** @type {(v?: any) => void} */
    let resolveClosed = () => {};
    /** Resolves when the server has stopped. */
    this.closed = new Promise((resolve) => {
      resolveClosed = resolve;
    });
    this.resolveClosed = resolveClosed;
    this.grpc = new grpc.Server({
      "grpc.max_receive_message_length": this.limits.maxFrameBytes,
      "grpc.max_send_message_length": this.limits.maxFrameBytes,
    });
    this.grpc.addService(socketService, {
      Connect: (/** @type {any} */ call) => this.connect(call),
      Call: (/** @type {any} */ call, /** @type {any} */ cb) => this.unary(call, cb),
      Describe: (/** @type {any} */ call, /** @type {any} */ cb) => this.describe(call, cb),
    });
    this.grpc.addService(healthService, this.health.handlers());
    this.onSignal = () => {
      this.log("info", "streamgate: signal received; draining", { service: this.name });
      void this.shutdown();
    };
  }

  /**
   * handle registers an action under a name in UPPER_SNAKE_CASE. Actions
   * are writes unless declared read. Register every action before listen.
   * @param {string} name
   * @param {Handler} fn
   * @param {ActionOptions} [opts]
   * @returns {this}
   */
  handle(name, fn, opts = {}) {
    if (typeof name !== "string" || !ACTION_NAME.test(name)) {
      throw new TypeError(`streamgate: action ${JSON.stringify(name)}: want UPPER_SNAKE_CASE`);
    }
    if (typeof fn !== "function") {
      throw new TypeError(`streamgate: action ${name}: the handler is not a function`);
    }
    if (this.serving) {
      throw new Error(`streamgate: action ${name}: register actions before listen`);
    }
    if (this.actions.has(name)) {
      throw new Error(`streamgate: action ${name} registered twice`);
    }
    const read = !!opts.read;
    const cacheTtlMs = opts.cacheTtlMs ?? 0;
    const timeoutMs = opts.timeoutMs ?? 0;
    if (!(cacheTtlMs >= 0) || !(timeoutMs >= 0)) {
      throw new TypeError(`streamgate: action ${name}: negative duration`);
    }
    if (cacheTtlMs > 0 && !read) {
      throw new TypeError(`streamgate: action ${name}: only reads may be cached`);
    }
    if (opts.public && !read) {
      throw new TypeError(`streamgate: action ${name}: only reads may be public`);
    }
    this.actions.set(name, {
      name,
      fn,
      read,
      idempotent: read || !!opts.idempotent,
      public: !!opts.public,
      cacheTtlMs,
      timeoutMs,
      versions: [...(opts.versions ?? [])],
      doc: opts.doc ?? "",
      fields: opts.fields ? new Set(opts.fields) : null,
      stats: new ActionStats(),
    });
    return this;
  }

  /**
   * listen serves on address ("host:port"; port 0 picks one) and resolves
   * with the address bound. It drains on the configured signals.
   * @param {string} [address]
   * @returns {Promise<string>}
   */
  async listen(address = "127.0.0.1:0") {
    if (this.serving) {
      throw new Error("streamgate: listen called twice");
    }
    this.serving = true;
    const port = await new Promise((resolve, reject) => {
      this.grpc.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    this.health.set(HealthStatus.SERVING);
    for (const s of this.signals) {
      process.on(s, this.onSignal);
    }
    const host = address.slice(0, address.lastIndexOf(":"));
    return `${host}:${port}`;
  }

  /**
   * publish sends an event on topic to every stream subscribed to it, with
   * the topic's next seq (per topic and process, from 1), and returns that
   * seq. data is encoded as JSON (undefined is null). Streams whose event
   * queue is full miss it and get a gap marker.
   * @param {string} topic
   * @param {unknown} data
   * @param {import("./events.js").Visibility} [visibility]
   * @returns {number}
   */
  publish(topic, data, visibility = {}) {
    const bad = checkTopic(topic, false);
    if (bad) {
      throw bad;
    }
    const json = JSON.stringify(data) ?? "null";
    return Number(this.events.publish(topic, Buffer.from(json, "utf8"), visibility));
  }

  /**
   * shutdown drains: health turns NOT_SERVING, every stream gets a drain
   * frame and refuses new requests (UNAVAILABLE, reason draining), new
   * streams are refused, requests in flight are answered; once the callers
   * closed their streams (or drainTimeoutMs passed) the server stops. It
   * resolves when the server has stopped.
   * @returns {Promise<void>}
   */
  shutdown() {
    if (!this.shutdownPromise) {
      this.shutdownPromise = this.drain();
    }
    return this.shutdownPromise;
  }

  /** close stops at once: streams end and writes in flight are aborted. */
  close() {
    this.stop();
  }

  async drain() {
    const deadline = performance.now() + this.limits.drainTimeoutMs;
    this.draining = true;
    this.health.set(HealthStatus.NOT_SERVING);
    for (const st of this.streams) {
      st.drain();
    }
    if (this.streams.size > 0) {
      const idle = new Promise((resolve) => {
        this.onIdle = () => resolve(true);
      });
      const ended = await withTimeout(idle, deadline - performance.now());
      if (!ended) {
        this.log("warn", "streamgate: drain timeout; cancelling requests still in flight", { service: this.name });
      }
    }
    this.health.close();
    const graceful = new Promise((resolve) => this.grpc.tryShutdown(() => resolve(true)));
    await withTimeout(graceful, Math.max(deadline - performance.now(), 0));
    this.stop();
  }

  stop() {
    if (this.stopped.signal.aborted) {
      return;
    }
    this.draining = true;
    this.stopped.abort(new SocketError(Codes.UNAVAILABLE, "server stopped"));
    this.health.close();
    for (const st of this.streams) {
      st.stop();
    }
    this.grpc.forceShutdown();
    for (const s of this.signals) {
      process.off(s, this.onSignal);
    }
    this.resolveClosed();
  }

  /**
   * authenticate returns the key of a call, or null after ending it with
   * UNAUTHENTICATED.
   * @param {grpc.Metadata} md
   * @returns {KeyEntry}
   */
  authenticate(md) {
    return this.keys.lookup(md);
  }

  /**
   * callerKey authenticates a call by its metadata: the caller's key, or
   * undefined once refuse was given the call's UNAUTHENTICATED status.
   * @param {grpc.Metadata} md
   * @param {(status: Partial<grpc.StatusObject>) => void} refuse
   * @returns {KeyEntry | undefined}
   */
  callerKey(md, refuse) {
    try {
      return this.authenticate(md);
    } catch (e) {
      refuse({ code: grpc.status.UNAUTHENTICATED, details: /** @type {Error} */ (e).message });
      return undefined;
    }
  }

  /** @param {grpc.ServerDuplexStream<any, Buffer>} call */
  connect(call) {
    const key = this.callerKey(call.metadata, (status) => call.emit("error", status));
    if (!key) {
      return;
    }
    if (this.draining) {
      call.emit("error", { code: grpc.status.UNAVAILABLE, details: "the service is draining" });
      return;
    }
    const st = new ServerStream(this, call, key);
    this.streams.add(st);
    st.start(() => {
      this.streams.delete(st);
      if (this.draining && this.streams.size === 0 && this.onIdle) {
        this.onIdle();
      }
    });
  }

  /**
   * unary answers a Call: one request without a stream.
   * @param {grpc.ServerUnaryCall<any, any>} call
   * @param {grpc.sendUnaryData<any>} cb
   */
  unary(call, cb) {
    const key = this.callerKey(call.metadata, cb);
    if (!key) {
      return;
    }
    const f = call.request.request;
    const id = f?.id ?? 0n;
    const raw = f?.payload?.case === "bodyRaw";
    /** @param {any} outcome */
    const answer = (outcome) => cb(null, { response: responseMessage(id, raw, outcome) });
    let adm;
    try {
      adm = this.admit(key, f);
    } catch (e) {
      answer({ error: asSocketError(e).error });
      return;
    }
    if (this.inFlight >= this.limits.maxInFlight) {
      answer({ error: serverBusy() });
      return;
    }
    const ac = new Abort();
    if (adm.action.read) {
      call.on("cancelled", () => ac.abort(new DOMException("canceled", "AbortError")));
    }
    this.inFlight++;
    const req = this.start(adm, ac);
    req.outcome.then((outcome) => {
      this.inFlight--;
      req.done();
      try {
        answer(outcome);
      } catch (e) {
        this.log("error", "streamgate: an answer could not be sent", { service: this.name, err: String(e) });
        cb({ code: grpc.status.INTERNAL, details: "the answer could not be sent" });
      }
    });
  }

  /**
   * describe answers the action catalogue: the actions the key may call.
   * @param {grpc.ServerUnaryCall<any, any>} call
   * @param {grpc.sendUnaryData<any>} cb
   */
  describe(call, cb) {
    const key = this.callerKey(call.metadata, cb);
    if (!key) {
      return;
    }
    const actions = [...this.actions.values()]
      .filter((a) => mayCall(key, a.name))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((a) => ({
        name: a.name,
        kind: a.read ? 1 : 2,
        idempotent: a.idempotent,
        cacheTtl: duration(a.cacheTtlMs),
        versions: a.versions,
        timeout: duration(a.timeoutMs),
        doc: a.doc,
        public: a.public,
        stats: a.stats.snapshot(),
      }));
    cb(null, { service: this.name, version: this.version, instance: this.instance, actions });
  }

  /**
   * admit checks a request frame against the actions and the caller's key
   * and turns it into what a handler receives. Every problem is a
   * SocketError for this frame alone.
   * @param {KeyEntry} key
   * @param {any} f a Request
   * @returns {Admitted}
   */
  admit(key, f) {
    if (!f) {
      throw new SocketError(Codes.INVALID_ARGUMENT, "frame without a request");
    }
    if (f.action === "") {
      throw new SocketError(Codes.INVALID_ARGUMENT, `request ${f.id} has no action`);
    }
    const a = this.actions.get(f.action);
    if (!a) {
      throw new SocketError(Codes.NOT_FOUND, `service ${JSON.stringify(this.name)} has no action ${JSON.stringify(f.action)}`, {
        action: f.action,
        service: this.name,
      });
    }
    if (!mayCall(key, a.name)) {
      throw new SocketError(Codes.PERMISSION_DENIED, `key ${JSON.stringify(key.name)} may not call ${a.name}`);
    }
    const m = f.meta;
    const apiVersion = m?.apiVersion ?? "";
    if (a.versions.length > 0 && !a.versions.includes(apiVersion)) {
      throw new SocketError(
        Codes.NOT_SUPPORTED,
        `${a.name} is not supported in API version ${JSON.stringify(apiVersion)}; supported: [${a.versions.join(" ")}]`,
        { action: a.name, version: apiVersion, supported: a.versions },
      );
    }
    let text;
    try {
      text = bodyText(f.payload);
    } catch {
      throw new SocketError(Codes.INVALID_ARGUMENT, "body: not a JSON value");
    }
    const size = f.payload?.case === "bodyRaw" ? f.payload.value.byteLength : Buffer.byteLength(text, "utf8");
    if (size > this.limits.maxBodyBytes) {
      throw new SocketError(Codes.INVALID_ARGUMENT, `body is ${size} bytes; the limit is ${this.limits.maxBodyBytes}`, {
        reason: Reasons.BODY_TOO_LARGE,
        limit: this.limits.maxBodyBytes,
      });
    }
    let body = null;
    const hasBody = text.trim() !== "";
    if (hasBody) {
      try {
        body = JSON.parse(text);
      } catch (e) {
        throw new SocketError(Codes.INVALID_ARGUMENT, `invalid JSON body: ${/** @type {Error} */ (e).message}`);
      }
    }
    if (a.fields && body !== null) {
      if (typeof body !== "object" || Array.isArray(body)) {
        throw new SocketError(Codes.INVALID_ARGUMENT, "invalid body: want a JSON object");
      }
      for (const field of Object.keys(body)) {
        if (!a.fields.has(field)) {
          throw new SocketError(Codes.INVALID_ARGUMENT, `invalid body: unknown field ${JSON.stringify(field)}`, {
            field,
            reason: Reasons.UNKNOWN_FIELD,
          });
        }
      }
    }
    /** @type {Meta} */
    const meta = {
      apiVersion,
      caller: key.name,
      principal: { subject: key.name, roles: [...key.roles] },
      traceparent: m?.traceparent ?? "",
      tracestate: m?.tracestate ?? "",
      idempotencyKey: m?.idempotencyKey ?? "",
      requestId: m?.requestId ?? "",
      readEpoch: m?.readEpoch ?? "",
    };
    const p = m?.principal;
    if (p && (p.subject !== "" || p.roles.length > 0)) {
      if (!key.delegate) {
        throw new SocketError(Codes.PERMISSION_DENIED, `key ${JSON.stringify(key.name)} may not act for another principal`);
      }
      meta.principal = { subject: p.subject, roles: [...p.roles] };
    }
    return { action: a, id: f.resourceId ?? "", body, hasBody, raw: f.payload?.case === "bodyRaw", meta, timeoutMs: f.timeoutMs ?? 0 };
  }

  /**
   * start runs an admitted request under ac, which the caller aborts on a
   * cancel frame (and, for reads, when the stream ends). Its deadline is
   * the frame's, shortened by the action's timeout; a write without one
   * gets drainTimeoutMs, and is not cancelled when its caller goes away
   * (the caller cannot tell whether it ran), only when the server stops.
   * outcome never rejects. done releases the deadline timer.
   * @param {Admitted} adm
   * @param {Abort} ac
   * @returns {{outcome: Promise<{json?: string, error?: SocketError, replayed?: boolean}>, done: () => void}}
   */
  start(adm, ac) {
    const a = adm.action;
    let timeout = adm.timeoutMs;
    if (a.timeoutMs > 0 && (timeout === 0 || a.timeoutMs < timeout)) {
      timeout = a.timeoutMs;
    }
    if (!a.read && timeout === 0) {
      timeout = this.limits.drainTimeoutMs;
    }
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    if (timeout > 0) {
      timer = setTimeout(() => ac.abort(deadlineReason()), timeout);
      timer.unref();
    }
    /** @type {() => void} */
    let unstop = () => {};
    if (!a.read) {
      const onStop = () => ac.abort(this.stopped.signal.reason);
      this.stopped.signal.addEventListener("abort", onStop, { once: true });
      unstop = () => this.stopped.signal.removeEventListener("abort", onStop);
    }
    /** @type {Promise<{json?: string, error?: SocketError, replayed?: boolean}>} */
    const outcome = this.execute(adm, ac).catch((e) => ({ error: asSocketError(e, ac).error }));
    return {
      outcome,
      done: () => {
        clearTimeout(timer);
        unstop();
      },
    };
  }

  /**
   * execute runs a request: a read is answered from the cache or shares
   * one handler run with identical reads in flight (on every stream); it
   * ends with its own signal even when the run goes on for others.
   * @param {Admitted} adm
   * @param {Abort} ac
   * @returns {Promise<{json: string, replayed?: boolean}>}
   */
  async execute(adm, ac) {
    const a = adm.action;
    if (!a.read) {
      return this.run(adm, ac);
    }
    if (!this.coalesce && a.cacheTtlMs === 0) {
      // Nothing shares this read: no key to build.
      const { json } = await abortable(this.run(adm, ac), ac);
      return { json };
    }
    const key = readKey({
      action: a.name,
      id: adm.id,
      body: adm.body,
      hasBody: adm.hasBody,
      apiVersion: adm.meta.apiVersion,
      scope: a.public ? "" : JSON.stringify([adm.meta.principal.subject, ...adm.meta.principal.roles]),
      readEpoch: adm.meta.readEpoch,
    });
    if (a.cacheTtlMs > 0) {
      const hit = this.cache.get(key);
      if (hit !== undefined) {
        return { json: hit };
      }
    }
    /** @param {Abort | AbortSignal} s */
    const runOnce = async (s) => {
      const { json } = await this.run(adm, s);
      if (a.cacheTtlMs > 0) {
        this.cache.set(key, json, a.cacheTtlMs);
      }
      return json;
    };
    if (!this.coalesce) {
      return { json: await abortable(runOnce(ac), ac) };
    }
    const { result, shared } = this.flights.do(key, ac.signal, (s) => {
      const t = a.timeoutMs > 0 ? AbortSignal.any([s, AbortSignal.timeout(a.timeoutMs)]) : s;
      return runOnce(t);
    });
    if (shared) {
      a.stats.coalesced++;
    }
    return { json: await result };
  }

  /**
   * run calls the handler once, recording its stats; the result is its
   * JSON text. Anything but a SocketError (or the signal's own abort) is
   * logged and becomes INTERNAL "internal error".
   * @param {Admitted} adm
   * @param {Abort | AbortSignal} signal the request's Abort, or a shared run's signal
   * @returns {Promise<{json: string, replayed: boolean}>}
   */
  async run(adm, signal) {
    const a = adm.action;
    let replayed = false;
    const ctx = {
      // Made only when the handler asks for it (see Abort).
      get signal() {
        return signal instanceof Abort ? signal.signal : signal;
      },
      meta: adm.meta,
      markReplayed: () => {
        replayed = true;
      },
    };
    const req = { action: a.name, id: adm.id, body: adm.body };
    a.stats.inFlight++;
    const started = performance.now();
    /** @type {string | undefined} */
    let code;
    try {
      const result = await a.fn(req, ctx);
      let json;
      try {
        json = JSON.stringify(result === undefined ? null : result);
      } catch (e) {
        throw new Error(`the result of ${a.name} is not JSON-encodable`, { cause: e });
      }
      return { json, replayed };
    } catch (e) {
      const { error, internal } = asSocketError(e, signal);
      code = error.code;
      if (internal) {
        this.log("error", "streamgate: handler failed", { service: this.name, action: a.name, err: describeError(e) });
      } else if (error.cause !== undefined) {
        this.log("warn", "streamgate: handler failed", { service: this.name, action: a.name, code, err: describeError(error.cause) });
      }
      throw withoutDrainingReason(error);
    } finally {
      a.stats.inFlight--;
      a.stats.observe(performance.now() - started, code);
    }
  }
}

/**
 * abortable settles like p, or rejects with ac's reason when it aborts
 * first.
 * @template T
 * @param {Promise<T>} p
 * @param {Abort} ac
 * @returns {Promise<T>}
 */
function abortable(p, ac) {
  if (ac.aborted) {
    p.catch(() => {});
    return Promise.reject(ac.reason);
  }
  return new Promise((resolve, reject) => {
    const unlisten = ac.onAbort(() => reject(ac.reason));
    p.then(
      (v) => {
        unlisten();
        resolve(v);
      },
      (e) => {
        unlisten();
        reject(e);
      },
    );
  });
}

/**
 * withTimeout resolves with p's value, or false after ms.
 * @param {Promise<boolean>} p
 * @param {number} ms
 * @returns {Promise<boolean>}
 */
function withTimeout(p, ms) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const t = new Promise((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(ms, 0));
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * withoutDrainingReason keeps a handler from passing on the draining
 * reason it got from another service: that reason promises the action did
 * not run, which only the runtime can say.
 * @param {SocketError} e
 * @returns {SocketError}
 */
function withoutDrainingReason(e) {
  if (e.details?.reason !== Reasons.DRAINING) {
    return e;
  }
  const { reason: _, ...rest } = e.details;
  return new SocketError(e.code, e.message, rest, { cause: e.cause });
}

/** @param {unknown} e */
function describeError(e) {
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}
