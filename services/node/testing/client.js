// A socket client for the tests: real @grpc/grpc-js calls over loopback,
// frames in and out as the protocol has them.
import * as grpc from "@grpc/grpc-js";
import { fromJson, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { socketClientService } from "../src/wire.js";
import { healthService } from "../src/health.js";

const SocketClient = grpc.makeGenericClientConstructor(socketClientService, "SocketService");
const HealthClient = grpc.makeGenericClientConstructor(healthService, "Health");

/**
 * dial returns a client of the service at addr using the key secret.
 * @param {string} addr
 * @param {string} [secret]
 */
export function dial(addr, secret) {
  const client = new SocketClient(addr, grpc.credentials.createInsecure());
  const health = new HealthClient(addr, grpc.credentials.createInsecure());
  const md = () => {
    const m = new grpc.Metadata();
    if (secret !== undefined) m.set("authorization", `Bearer ${secret}`);
    return m;
  };
  return {
    /** open starts a Connect stream. */
    open: () => new Stream(/** @type {any} */ (client).Connect(md())),
    /** @param {any} request */
    call: (request) => unary(client, "Call", { request }, md()),
    describe: () => unary(client, "Describe", {}, md()),
    /** @param {string} service */
    check: (service) => unary(health, "Check", { service }, new grpc.Metadata()),
    close: () => {
      client.close();
      health.close();
    },
  };
}

/**
 * @param {any} client
 * @param {string} method
 * @param {any} req
 * @param {grpc.Metadata} md
 * @returns {Promise<any>}
 */
function unary(client, method, req, md) {
  return new Promise((resolve, reject) => client[method](req, md, (/** @type {any} */ err, /** @type {any} */ res) => (err ? reject(err) : resolve(res))));
}

/** Stream is one Connect call: send frames, wait for frames. */
export class Stream {
  /** @param {grpc.ClientDuplexStream<any, any>} call */
  constructor(call) {
    this.call = call;
    /** @type {any[]} */
    this.frames = [];
    /** @type {{pred: (f: any) => boolean, resolve: (f: any) => void}[]} */
    this.waiters = [];
    this.nextId = 1n;
    /** Resolves with the stream's final status. */
    this.status = new Promise((resolve) => call.on("status", resolve));
    /** Resolves with the response headers. */
    this.headers = new Promise((resolve) => call.on("metadata", resolve));
    call.on("error", () => {});
    call.on("data", (f) => {
      const i = this.waiters.findIndex((w) => w.pred(f));
      if (i >= 0) {
        const [w] = this.waiters.splice(i, 1);
        w.resolve(f);
      } else {
        this.frames.push(f);
      }
    });
  }

  /** @param {any} frame a ConnectRequest init */
  send(frame) {
    this.call.write(frame);
  }

  /**
   * next resolves with the first frame (queued or to come) for which pred holds.
   * @param {(f: any) => boolean} pred
   */
  next(pred = () => true) {
    const i = this.frames.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]);
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }

  /**
   * sendRequest sends a request frame and returns its id.
   * @param {string} action
   * @param {string} [id]
   * @param {unknown} [body] JSON value; undefined: no body
   * @param {{raw?: boolean, meta?: any, timeoutMs?: number, reqId?: bigint, bodyRaw?: Uint8Array}} [opts]
   */
  sendRequest(action, id = "", body = undefined, opts = {}) {
    const reqId = opts.reqId ?? this.nextId++;
    let payload;
    if (opts.bodyRaw) payload = { case: "bodyRaw", value: opts.bodyRaw };
    else if (body !== undefined && opts.raw === false) payload = { case: "body", value: fromJson(ValueSchema, /** @type {any} */ (body)) };
    else if (body !== undefined) payload = { case: "bodyRaw", value: Buffer.from(JSON.stringify(body)) };
    this.send({ frame: { case: "request", value: { id: reqId, action, resourceId: id, payload, meta: opts.meta, timeoutMs: opts.timeoutMs ?? 0 } } });
    return reqId;
  }

  /**
   * request sends a request and resolves with its answer: {ok, result, error, replayed}.
   * @param {string} action
   * @param {string} [id]
   * @param {unknown} [body]
   * @param {{raw?: boolean, meta?: any, timeoutMs?: number, reqId?: bigint, bodyRaw?: Uint8Array}} [opts]
   */
  async request(action, id, body, opts) {
    const reqId = this.sendRequest(action, id, body, opts);
    return this.answer(reqId);
  }

  /** @param {bigint} reqId */
  async answer(reqId) {
    const f = await this.next((f) => f.frame.case === "response" && f.frame.value.id === reqId);
    return outcome(f.frame.value);
  }

  /** end half-closes the stream. */
  end() {
    this.call.end();
  }

  cancel() {
    this.call.cancel();
  }
}

/**
 * outcome decodes a Response.
 * @param {any} r
 */
export function outcome(r) {
  switch (r.outcome.case) {
    case "resultRaw":
      return { ok: r.ok, form: "raw", result: JSON.parse(Buffer.from(r.outcome.value).toString("utf8")), replayed: r.replayed };
    case "result":
      return { ok: r.ok, form: "value", result: toJson(ValueSchema, r.outcome.value), replayed: r.replayed };
    case "error":
      return { ok: r.ok, error: { code: r.outcome.value.code, message: r.outcome.value.message, details: r.outcome.value.details } };
  }
  return { ok: r.ok };
}
