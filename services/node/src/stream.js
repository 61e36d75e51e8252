// One open socket on the service side (docs/protocol.md §3–§5, §10, §11),
// as the Go runtime's server_stream.go: frames in, answers and events out,
// many requests in flight, a bounded send queue that stops reading from a
// caller that does not read its answers.

import * as grpc from "@grpc/grpc-js";
import { Codes, Reasons, SocketError, asSocketError, cancelReason, serverBusy } from "./errors.js";
import { METADATA_INSTANCE, encodeAnswer, encodeFrame, errorToProto } from "./wire.js";
import { EVENT_QUEUE, GAP_MARKER, checkTopic } from "./events.js";
import { Abort } from "./abort.js";

/**
 * How many frames wait to be sent before the stream stops reading new
 * frames: a caller that does not read its answers stops being served
 * instead of growing memory.
 */
const SEND_QUEUE = 64;

const errDraining = () =>
  new SocketError(Codes.UNAVAILABLE, "the stream is draining: send the request on another stream", {
    reason: Reasons.DRAINING,
  });

const errStreamBusy = () => new SocketError(Codes.RESOURCE_EXHAUSTED, "too many requests in flight on this stream");

/**
 * @typedef {import("./server.js").Server} Server
 * @typedef {import("./keys.js").KeyEntry} KeyEntry
 * @typedef {import("./events.js").Subscriber} Subscriber
 */

/** ServerStream is one Connect call. */
export class ServerStream {
  /**
   * @param {Server} server
   * @param {grpc.ServerDuplexStream<any, Buffer>} call
   * @param {KeyEntry} key
   */
  constructor(server, call, key) {
    this.server = server;
    this.call = call;
    this.key = key;
    /** @type {Map<bigint, {ac: Abort, read: boolean}>} requests in flight by id */
    this.running = new Map();
    this.inFlight = 0; // handlers running, cancelled ones included
    this.draining = false;
    this.halfClosed = false;
    this.ended = false;
    /** @type {Buffer[]} encoded frames waiting for the call's write side */
    this.out = [];
    /** @type {any[]} event frames waiting (at most EVENT_QUEUE) */
    this.events = [];
    this.gap = false; // events were dropped: a gap marker goes before the next event
    this.blocked = false; // the call's write side is full; 'drain' resumes
    this.paused = false; // reading is paused until out has room
    /** @type {Subscriber | null} */
    this.sub = null;
    /** @type {() => void} */
    this.onEnd = () => {};
  }

  /**
   * start accepts the stream and reads frames until it ends; onEnd is
   * called once when it has.
   * @param {() => void} onEnd
   */
  start(onEnd) {
    this.onEnd = onEnd;
    const md = new grpc.Metadata();
    md.set(METADATA_INSTANCE, this.server.instance);
    this.call.sendMetadata(md);
    this.call.on("data", (f) => {
      try {
        this.onFrame(f);
      } catch (e) {
        this.server.log("error", "streamgate: a frame could not be handled", { service: this.server.name, err: String(e) });
      }
    });
    this.call.on("end", () => {
      this.halfClosed = true;
      this.maybeFinish();
    });
    this.call.on("cancelled", () => this.end());
    this.call.on("error", () => this.end());
    this.call.on("close", () => this.end());
    this.call.on("finish", () => this.end());
  }

  /**
   * onFrame handles one frame from the caller.
   * @param {any} f a ConnectRequest
   */
  onFrame(f) {
    if (this.ended) {
      return;
    }
    switch (f.frame?.case) {
      case "request":
        this.onRequest(f.frame.value);
        return;
      case "cancel":
        this.onCancel(f.frame.value.id);
        return;
      case "subscribe":
        this.onSubscribe(f.frame.value.topic);
        return;
      case "unsubscribe":
        this.sub?.topics.delete(f.frame.value.topic);
        return;
      default:
        this.reply(0n, false, new SocketError(Codes.INVALID_ARGUMENT, "empty frame: set request, cancel, subscribe or unsubscribe"));
    }
  }

  /**
   * onRequest admits a request frame and starts its handler, or answers
   * it at once with the reason it cannot run.
   * @param {any} f a Request
   */
  onRequest(f) {
    const id = f.id;
    const raw = f.payload?.case === "bodyRaw";
    if (id === 0n) {
      this.reply(id, raw, new SocketError(Codes.INVALID_ARGUMENT, "request id must not be 0"));
      return;
    }
    if (this.draining) {
      this.reply(id, raw, errDraining());
      return;
    }
    const srv = this.server;
    let adm;
    try {
      adm = srv.admit(this.key, f);
    } catch (e) {
      this.reply(id, raw, asSocketError(e).error);
      return;
    }
    if (this.inFlight >= srv.limits.maxInFlightPerStream) {
      this.reply(id, raw, errStreamBusy());
      return;
    }
    if (srv.inFlight >= srv.limits.maxInFlight) {
      this.reply(id, raw, serverBusy());
      return;
    }
    if (this.running.has(id)) {
      this.reply(id, raw, new SocketError(Codes.INVALID_ARGUMENT, `request id ${id} is already in flight on this stream`));
      return;
    }
    const r = { ac: new Abort(), read: adm.action.read };
    this.running.set(id, r);
    this.inFlight++;
    srv.inFlight++;
    const req = srv.start(adm, r.ac);
    void req.outcome.then((outcome) => {
      req.done();
      this.inFlight--;
      srv.inFlight--;
      const wanted = this.running.get(id) === r;
      if (wanted) {
        this.running.delete(id);
        this.answer(id, raw, outcome);
      }
      this.maybeFinish();
    });
  }

  /**
   * onCancel stops a request in flight; the caller expects no answer.
   * @param {bigint} id
   */
  onCancel(id) {
    const r = this.running.get(id);
    if (r) {
      this.running.delete(id);
      r.ac.abort(cancelReason());
    }
  }

  /**
   * onSubscribe adds a subscription and acknowledges it. A bad topic is
   * answered with an error response (id 0); a key limited to some
   * actions is refused in the acknowledgement (events carry whole
   * objects, whatever action changed them).
   * @param {string} topic
   */
  onSubscribe(topic) {
    const bad = checkTopic(topic, true);
    if (bad) {
      this.reply(0n, false, bad);
      return;
    }
    if (this.key.actions !== null) {
      const e = new SocketError(Codes.PERMISSION_DENIED, `key ${JSON.stringify(this.key.name)} is limited to some actions and may not subscribe`);
      this.send({ frame: { case: "subscribed", value: { topic, error: errorToProto(e) } } });
      return;
    }
    if (!this.sub) {
      this.sub = {
        topics: new Set(),
        all: this.key.delegate,
        self: { subject: this.key.name, roles: this.key.roles },
        offer: (frame) => this.offerEvent(frame),
      };
      this.server.events.subscribers.add(this.sub);
    }
    this.sub.topics.add(topic);
    this.send({ frame: { case: "subscribed", value: { topic } } });
  }

  /**
   * offerEvent queues an event, or drops it when the stream's event queue
   * is full; the gap marker then goes out as soon as there is room.
   * @param {any} frame
   * @returns {boolean}
   */
  offerEvent(frame) {
    if (this.ended) {
      return false;
    }
    if (this.events.length >= EVENT_QUEUE) {
      this.gap = true;
      return false;
    }
    this.events.push(frame);
    this.pump();
    return true;
  }

  /**
   * drain tells the caller to move on; request frames that still arrive
   * are answered UNAVAILABLE (reason draining) without running.
   */
  drain() {
    if (this.draining) {
      return;
    }
    this.draining = true;
    this.send({ frame: { case: "drain", value: { reason: "shutdown" } } }, true);
  }

  /** stop ends the stream now: its requests in flight are aborted. */
  stop() {
    for (const r of this.running.values()) {
      r.ac.abort(cancelReason());
    }
    this.end();
  }

  /**
   * reply answers a request with an error without running it.
   * @param {bigint} id
   * @param {boolean} raw
   * @param {SocketError} e
   */
  reply(id, raw, e) {
    this.answer(id, raw, { error: e });
  }

  /**
   * answer queues a request's answer.
   * @param {bigint} id
   * @param {boolean} raw
   * @param {{json?: string, error?: SocketError, replayed?: boolean}} outcome
   */
  answer(id, raw, outcome) {
    if (!this.ended) {
      this.queue(encodeAnswer(id, raw, outcome, this.server.limits.maxFrameBytes));
    }
  }

  /**
   * send queues a frame (first, with urgent); once the stream is over,
   * frames are dropped. A frame that cannot be sent never reaches gRPC: an
   * answer is replaced by an INTERNAL error of the same request.
   * @param {any} frame a ConnectResponse init
   * @param {boolean} [urgent]
   */
  send(frame, urgent = false) {
    if (this.ended) {
      return;
    }
    this.queue(encodeFrame(frame, this.server.limits.maxFrameBytes), urgent);
  }

  /**
   * queue queues an encoded frame (first, with urgent), logging why one
   * could not be encoded.
   * @param {{bytes: Buffer | null, problem?: string}} encoded
   * @param {boolean} [urgent]
   */
  queue({ bytes, problem }, urgent = false) {
    if (problem) {
      this.server.log("error", "streamgate: a frame could not be sent", { service: this.server.name, problem });
    }
    if (!bytes) {
      return;
    }
    if (urgent) {
      this.out.unshift(bytes);
    } else {
      this.out.push(bytes);
    }
    if (this.out.length > SEND_QUEUE && !this.paused) {
      this.paused = true;
      this.call.pause();
    }
    this.pump();
  }

  /** pump writes what is queued while the call's write side takes it. */
  pump() {
    while (!this.blocked && !this.ended) {
      let bytes;
      if (this.out.length > 0) {
        bytes = this.out.shift();
      } else if (this.gap) {
        this.gap = false;
        bytes = encodeFrame(GAP_MARKER, this.server.limits.maxFrameBytes).bytes;
      } else if (this.events.length > 0) {
        bytes = encodeFrame(this.events.shift(), this.server.limits.maxFrameBytes).bytes;
      } else {
        break;
      }
      if (!bytes) {
        continue;
      }
      if (!this.call.write(bytes)) {
        this.blocked = true;
        this.call.once("drain", () => {
          this.blocked = false;
          this.pump();
        });
      }
    }
    if (this.paused && this.out.length <= SEND_QUEUE / 2 && !this.ended) {
      this.paused = false;
      this.call.resume();
    }
    this.maybeFinish();
  }

  /**
   * maybeFinish ends a stream the caller half-closed once everything in
   * flight is answered and written.
   */
  maybeFinish() {
    if (this.halfClosed && !this.ended && this.inFlight === 0 && this.out.length === 0) {
      this.end();
      this.call.end();
    }
  }

  /**
   * end marks the stream over: reads in flight are aborted (writes run on:
   * the caller cannot tell whether they ran), subscriptions end.
   */
  end() {
    if (this.ended) {
      return;
    }
    this.ended = true;
    for (const [id, r] of this.running) {
      this.running.delete(id);
      if (r.read) {
        r.ac.abort(cancelReason());
      }
    }
    if (this.sub) {
      this.server.events.subscribers.delete(this.sub);
      this.sub = null;
    }
    this.out = [];
    this.events = [];
    this.onEnd();
  }
}
