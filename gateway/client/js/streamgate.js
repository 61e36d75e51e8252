// streamgate — the JavaScript client of the gateway's WebSocket endpoint
// GET /{version}/socket (subprotocol streamgate.v1). An ES module with no
// dependencies, for browsers and node ≥ 20 (node 20 needs
// --experimental-websocket, or pass a WebSocket constructor).
//
//   import { connect } from './streamgate.js';
//   const s = await connect('ws://127.0.0.1:8080/v3/socket', { token });
//   const user = await s.request('GET_USER', 'alice');      // the seed's form
//   await s.patch('/users/alice', { name: 'Alice' });        // REST's form
//   const unsub = s.subscribe('orders/ord_1', ev => console.log(ev.seq, ev.data));
//   await unsub.ready;                                       // 200, or 403/404 as a GET
//   unsub(); s.close();
//
// Every request is a promise settled by the answer with the same id;
// answers come back out of order. A lost connection is opened again with
// exponential backoff and jitter, signed in again and subscribed again;
// requests that were in flight on it are rejected (their outcome is
// unknown: retry writes with the same idempotencyKey). When the gateway
// reads events from JetStream (events carry an epoch), a topic is
// subscribed again from the last seq seen: the missed events follow, or,
// when the gateway no longer holds them, a gap marker with recovered:
// false tells the app to read the object again.

/** The subprotocol the gateway speaks. */
export const PROTOCOL = 'streamgate.v1';

/** Close codes the gateway uses beyond the standard ones. */
export const CLOSE_UNAUTHORIZED = 4401;
export const CLOSE_TOO_SLOW = 4408;

const CLOSE_NORMAL = 1000;

/**
 * The rejection of a request the gateway answered with ok:false, or that
 * could not be answered (code UNAVAILABLE, DEADLINE_EXCEEDED, …).
 */
export class StreamgateError extends Error {
  /**
   * @param {string} code one of the gateway's error codes, e.g. NOT_FOUND
   * @param {number} status the HTTP status the code maps to
   * @param {string} message safe to show a person
   * @param {Record<string, unknown>} [details]
   */
  constructor(code, status, message, details) {
    super(message);
    this.name = 'StreamgateError';
    this.code = code;
    this.status = status;
    this.details = details ?? {};
  }
}

const defaults = {
  initialDelay: 250, // ms before the first reconnect
  maxDelay: 10_000, // ms, the bound of the backoff
  connectTimeout: 10_000, // ms for opening and signing in
};

/**
 * Opens a session: the socket is open (and signed in, with a token) when
 * the promise resolves. A refused token rejects with UNAUTHENTICATED.
 * @param {string | URL} url ws(s)://host/VERSION/socket; http(s) URLs are turned into ws(s)
 * @param {import('./streamgate.js').ConnectOptions} [options]
 * @returns {Promise<Session>}
 */
export async function connect(url, options = {}) {
  const s = new Session(url, options);
  await s._open();
  return s;
}

/** A session over one socket at a time, reopened when it is lost. */
export class Session {
  /** @param {string | URL} url @param {import('./streamgate.js').ConnectOptions} options */
  constructor(url, options) {
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (typeof WS !== 'function') {
      throw new TypeError('streamgate: no WebSocket here: pass options.WebSocket (node 20: run with --experimental-websocket)');
    }
    this._WS = WS;
    this._url = socketURL(url);
    this._token = options.token ?? '';
    this._onState = options.onState ?? (() => {});
    const rc = options.reconnect || {};
    this._reconnect = options.reconnect !== false;
    this._initialDelay = rc.initialDelay ?? defaults.initialDelay;
    this._maxDelay = rc.maxDelay ?? defaults.maxDelay;
    this._connectTimeout = options.connectTimeout ?? defaults.connectTimeout;

    this._ws = null; // the open, signed-in socket, or null
    this._nextID = 0;
    /** @type {Map<string, Pending>} */
    this._pending = new Map(); // requests sent on _ws, by id
    /** @type {Pending[]} */
    this._waiting = []; // requests waiting for an open socket
    /** @type {Map<string, Topic>} */
    this._topics = new Map();
    this._closed = false;
    this._attempt = 0;
    this._timer = null;
    this.state = 'connecting';
  }

  /**
   * Sends a request in the seed's form: the version's route for the
   * action, e.g. request('UPDATE_USER', 1, {name: 'Oska'}).
   * @param {string} action
   * @param {string | number | null} [id]
   * @param {unknown} [body]
   * @param {import('./streamgate.js').RequestOptions} [opts]
   */
  request(action, id, body, opts) {
    const frame = { action };
    if (id !== undefined && id !== null && id !== '') frame.resource_id = String(id);
    return this._call(frame, body, opts);
  }

  /**
   * Sends a request in REST's form: fetch('GET', '/users/1').
   * @param {string} method
   * @param {string} path the path after the version, e.g. /users/1
   * @param {unknown} [body]
   * @param {import('./streamgate.js').RequestOptions} [opts]
   */
  fetch(method, path, body, opts) {
    return this._call({ method: method.toUpperCase(), path }, body, opts);
  }

  /** GET path. */
  get(path, opts) { return this.fetch('GET', path, undefined, opts); }
  /** POST body to path. */
  post(path, body, opts) { return this.fetch('POST', path, body, opts); }
  /** PUT body to path. */
  put(path, body, opts) { return this.fetch('PUT', path, body, opts); }
  /** PATCH body to path. */
  patch(path, body, opts) { return this.fetch('PATCH', path, body, opts); }
  /** DELETE path. */
  delete(path, opts) { return this.fetch('DELETE', path, undefined, opts); }

  /**
   * Calls onEvent for every change of the topic (orders/ID, items/ID).
   * Returns the function that ends the subscription; its ready promise
   * settles with the gateway's answer (403/404 reject as a GET would).
   * After a reconnect the topic is subscribed again; an event after
   * missed ones has gap: true (and missed: how many, when known); when
   * events may be missing and none follows to tell, onEvent gets a gap
   * marker: gap true, data null. When the gateway reads events from
   * JetStream (events carry an epoch), the topic is subscribed again from
   * the last seq and epoch seen: the missed events come first, each once,
   * in order; when the gateway no longer holds them, a gap marker with
   * recovered: false comes instead (read the object again).
   * @param {string} topic
   * @param {(ev: import('./streamgate.js').StreamEvent) => void} onEvent
   * @returns {import('./streamgate.js').Unsubscribe}
   */
  subscribe(topic, onEvent) {
    let t = this._topics.get(topic);
    if (!t) {
      t = new Topic(topic);
      this._topics.set(topic, t);
      t.ready = this._subscribe(t);
      t.ready.catch(() => {
        if (this._topics.get(topic) === t) this._topics.delete(topic);
      });
    }
    const listener = { onEvent };
    t.listeners.add(listener);
    const unsub = () => {
      if (!t.listeners.delete(listener) || t.listeners.size > 0) return;
      if (this._topics.get(topic) === t) this._topics.delete(topic);
      if (t.subscribed && this._ws) {
        this._call({ type: 'unsubscribe', topic }).catch(() => {});
      }
    };
    unsub.ready = t.ready;
    return unsub;
  }

  /** Closes the session for good: pending requests are rejected. */
  close() {
    if (this._closed) return;
    this._closed = true;
    clearTimeout(this._timer);
    const ws = this._ws;
    this._ws = null;
    this._fail(new StreamgateError('CANCELED', 499, 'the session was closed'));
    this._topics.clear();
    if (ws) ws.close(CLOSE_NORMAL);
    this._setState('closed');
  }

  // --- internals ---

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    try { this._onState(state); } catch { /* the callback's own problem */ }
  }

  /** Subscribes a new topic, across lost connections. */
  async _subscribe(t) {
    for (;;) {
      try {
        t.started(await this._call({ type: 'subscribe', topic: t.topic }));
        break;
      } catch (err) {
        if (!lostConnection(err) || this._closed || this._topics.get(t.topic) !== t) throw err;
      }
    }
    t.subscribed = true;
    if (this._topics.get(t.topic) !== t && this._ws) {
      // unsubscribed while the gateway was still answering
      this._call({ type: 'unsubscribe', topic: t.topic }).catch(() => {});
    }
  }

  /**
   * Sends one frame with an id and settles with the answer to it. Without
   * an open socket the frame waits for the next one.
   * @param {Record<string, unknown>} fields
   * @param {unknown} [body]
   * @param {import('./streamgate.js').RequestOptions} [opts]
   */
  _call(fields, body, opts = {}) {
    return new Promise((resolve, reject) => {
      if (this._closed) {
        reject(new StreamgateError('CANCELED', 499, 'the session is closed'));
        return;
      }
      const signal = opts.signal;
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const id = String(++this._nextID);
      /** @type {Record<string, unknown>} */
      const frame = { type: 'request', id, ...fields };
      if (body !== undefined) frame.body = body;
      if (opts.idempotencyKey) frame.idempotency_key = opts.idempotencyKey;
      if (opts.timeout > 0) frame.timeout_ms = Math.ceil(opts.timeout);

      let done = false;
      let sentOn = null; // the socket the frame went out on
      let timer = null;
      const onAbort = () => stop(signal.reason);
      const finish = () => {
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this._pending.delete(id);
      };
      /** @type {Pending} */
      const entry = {
        resolve: (v) => { if (!done) { finish(); resolve(v); } },
        reject: (e) => { if (!done) { finish(); reject(e); } },
        send: () => {
          if (done) return; // abandoned while it waited
          this._pending.set(id, entry);
          sentOn = this._ws;
          this._send(sentOn, frame);
        },
      };
      // stop gives up on the answer and tells the gateway to stop working.
      const stop = (err) => {
        const ws = sentOn;
        entry.reject(err);
        if (ws && ws === this._ws) this._send(ws, { type: 'cancel', id });
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeout > 0) {
        timer = setTimeout(() => stop(new StreamgateError('DEADLINE_EXCEEDED', 504, `no answer within ${opts.timeout}ms`)), opts.timeout);
      }
      if (this._ws) entry.send();
      else this._waiting.push(entry);
    });
  }

  _send(ws, frame) {
    try {
      ws.send(JSON.stringify(frame));
    } catch {
      // the socket is closing: its close event fails what is pending
    }
  }

  /** Opens a socket and signs in; resolves when usable. */
  _open() {
    return new Promise((resolve, reject) => {
      const ws = new this._WS(this._url, PROTOCOL);
      let signedIn = false;
      const timer = setTimeout(() => {
        fail(new StreamgateError('UNAVAILABLE', 503, `the socket did not open within ${this._connectTimeout}ms`));
        ws.close();
      }, this._connectTimeout);
      const fail = (err) => {
        clearTimeout(timer);
        reject(err);
      };
      const ready = () => {
        if (this._closed) {
          fail(new StreamgateError('CANCELED', 499, 'the session was closed'));
          ws.close(CLOSE_NORMAL);
          return;
        }
        clearTimeout(timer);
        signedIn = true;
        this._ws = ws;
        this._attempt = 0;
        resolve();
        this._resume(ws);
      };
      ws.onopen = () => {
        if (this._closed) {
          ws.close(CLOSE_NORMAL);
          return;
        }
        if (!this._token) {
          ready();
          return;
        }
        this._send(ws, { type: 'auth', token: this._token });
      };
      ws.onmessage = (msg) => {
        if (typeof msg.data !== 'string') return;
        let f;
        try {
          f = JSON.parse(msg.data);
        } catch {
          return;
        }
        if (!signedIn) {
          if (f.type === 'auth' && f.ok === true) ready();
          else if (f.type === 'auth') {
            fail(authError(f.error?.message));
            ws.close(CLOSE_NORMAL);
          }
          return;
        }
        this._frame(f);
      };
      ws.onerror = () => {
        // Before it is ready, a failed socket fails the attempt at once
        // (node's WebSocket may not follow a refused connection with a
        // close event); once ready, the close event follows.
        if (!signedIn) {
          fail(new StreamgateError('UNAVAILABLE', 503, 'the socket could not be opened'));
          ws.onclose = null;
          try { ws.close(); } catch { /* not open yet */ }
        }
      };
      ws.onclose = (ev) => {
        if (!signedIn) {
          fail(ev.code === CLOSE_UNAUTHORIZED
            ? authError(ev.reason)
            : new StreamgateError('UNAVAILABLE', 503, `the socket closed before it was ready (code ${ev.code})`));
          return;
        }
        this._lost(ws, ev);
      };
    });
  }

  /** Sends what waited for a socket and subscribes the topics again. */
  /**
   * Sends what waited for a socket and subscribes the topics again; the
   * state is 'open' once the gateway answered every subscribe.
   * @param {WebSocketLike} ws the socket just opened
   */
  _resume(ws) {
    const renewed = [];
    for (const t of this._topics.values()) {
      if (!t.subscribed) continue; // its first subscribe is still on its way
      t.resubscribed = true;
      const frame = { type: 'subscribe', topic: t.topic };
      if (t.epoch) Object.assign(frame, { since: t.lastSeq, epoch: t.epoch });
      renewed.push(this._call(frame).then((res) => {
        if (t.resumed(res)) {
          for (const l of t.listeners) deliver(l, { topic: t.topic, seq: t.lastSeq, epoch: t.epoch, data: null, gap: true, recovered: false });
        }
      }, (err) => {
        if (lostConnection(err) || this._topics.get(t.topic) !== t) return; // the next reconnect tries again
        this._topics.delete(t.topic);
        for (const l of t.listeners) deliver(l, { topic: t.topic, seq: 0, data: null, gap: true, error: err });
      }));
    }
    const waiting = this._waiting;
    this._waiting = [];
    for (const entry of waiting) entry.send();
    if (renewed.length === 0) {
      this._setState('open');
      return;
    }
    Promise.all(renewed).then(() => {
      if (this._ws === ws) this._setState('open');
    });
  }

  _frame(f) {
    switch (f.type) {
      case 'response': {
        const p = this._pending.get(String(f.id));
        if (!p) return; // cancelled or timed out already
        if (f.ok) p.resolve(f.result);
        else p.reject(new StreamgateError(f.error?.code ?? 'INTERNAL', f.status ?? 500, f.error?.message ?? 'request failed', f.error?.details));
        return;
      }
      case 'event': {
        const t = this._topics.get(f.topic);
        if (!t) return;
        if (f.epoch !== undefined) {
          // The event log's seq: the same on every gateway, with jumps
          // where other topics' events fall; losses come as gap markers.
          if (f.epoch === t.epoch && f.seq <= t.lastSeq) return; // seen already
          t.epoch = f.epoch;
          t.lastSeq = f.seq;
          t.resubscribed = false;
          const ev = { topic: f.topic, seq: f.seq, epoch: f.epoch, data: f.data, gap: false };
          if (f.skipped > 0) ev.skipped = f.skipped;
          for (const l of t.listeners) deliver(l, ev);
          return;
        }
        const ev = { topic: f.topic, seq: f.seq, data: f.data, gap: false };
        // skipped: the gateway replaced that many older states of the
        // topic with this one (the client read slower than they came):
        // this is the latest state, nothing is missing.
        const skipped = f.skipped > 0 ? f.skipped : 0;
        if (skipped) ev.skipped = skipped;
        const next = t.lastSeq + 1 + skipped;
        if (t.lastSeq > 0 && f.seq !== next) {
          ev.gap = true;
          if (f.seq > next) ev.missed = f.seq - next;
        } else if (t.resubscribed && !(t.lastSeq > 0 && f.seq === next)) {
          ev.gap = true; // events while we were away cannot be counted
        }
        t.resubscribed = false;
        t.lastSeq = f.seq;
        for (const l of t.listeners) deliver(l, ev);
        return;
      }
      case 'gap': {
        // Events of the topic up to f.seq may be missing (the gateway
        // cannot prove it sent them all): read the object again.
        const t = this._topics.get(f.topic);
        if (!t) return;
        t.resubscribed = false;
        if (f.epoch !== undefined) {
          t.epoch = f.epoch; // a new epoch's seqs start again
          t.lastSeq = f.seq;
        } else if (f.seq > t.lastSeq) t.lastSeq = f.seq;
        for (const l of t.listeners) deliver(l, { topic: f.topic, seq: f.seq, ...(f.epoch !== undefined && { epoch: f.epoch }), data: null, gap: true });
        return;
      }
      default:
        // frames of later protocol versions
    }
  }

  /** Handles a socket that closed while in use. */
  _lost(ws, ev) {
    if (this._ws === ws) this._ws = null;
    this._fail(new StreamgateError('UNAVAILABLE', 503, `the connection was lost (code ${ev.code}); the outcome is unknown`, { reason: REASON_LOST }));
    if (this._closed) return;
    if (!this._reconnect || ev.code === CLOSE_UNAUTHORIZED) {
      this._end(ev.code === CLOSE_UNAUTHORIZED ? authError(ev.reason) : new StreamgateError('UNAVAILABLE', 503, 'the connection was lost'));
      return;
    }
    this._setState('reconnecting');
    this._retry();
  }

  _retry() {
    const ceiling = Math.min(this._maxDelay, this._initialDelay * 2 ** this._attempt);
    this._attempt++;
    const delay = ceiling / 2 + Math.random() * ceiling / 2;
    this._timer = setTimeout(() => {
      if (this._closed) return;
      this._open().catch((err) => {
        if (this._closed) return;
        if (err.code === 'UNAUTHENTICATED') {
          this._end(err); // e.g. the token expired: retrying cannot help
          return;
        }
        this._retry();
      });
    }, delay);
  }

  /** Ends a session that cannot go on: waiting requests and subscriptions get err. */
  _end(err) {
    this._closed = true;
    this._failWaiting(err);
    const topics = [...this._topics.values()];
    this._topics.clear();
    for (const t of topics) {
      for (const l of t.listeners) deliver(l, { topic: t.topic, seq: 0, data: null, gap: true, error: err });
    }
    this._setState('closed');
  }

  /** Rejects the requests in flight. */
  _fail(err) {
    for (const p of [...this._pending.values()]) p.reject(err);
    this._pending.clear();
    if (this._closed) this._failWaiting(err);
  }

  _failWaiting(err) {
    const waiting = this._waiting;
    this._waiting = [];
    for (const entry of waiting) entry.reject(err);
  }
}

/**
 * A request waiting for its answer (or for a socket to be sent on).
 * @typedef {{resolve: (v: unknown) => void, reject: (e: unknown) => void, send: () => void}} Pending
 * @typedef {import('./streamgate.js').WebSocketLike} WebSocketLike
 */

class Topic {
  /** @param {string} topic */
  constructor(topic) {
    this.topic = topic;
    this.listeners = new Set();
    this.subscribed = false; // the gateway accepted it once
    this.resubscribed = false; // subscribed again after a reconnect, no event since
    this.lastSeq = 0;
    this.epoch = undefined; // the event log's epoch of lastSeq; undefined: the gateway's own seqs
    this.ready = Promise.resolve();
  }

  /**
   * Notes where a first subscribe's events start.
   * @param {{seq?: number, epoch?: string} | undefined} res the subscribe's result
   */
  started(res) {
    if (res?.epoch) {
      this.epoch = res.epoch;
      this.lastSeq = res.seq ?? 0;
    }
  }

  /**
   * Notes a subscribe after a reconnect; true when events were lost (the
   * app reads the object again): the gateway reads the event log and did
   * not hold every event after the last one seen.
   * @param {{seq?: number, epoch?: string, recovered?: boolean} | undefined} res
   */
  resumed(res) {
    if (!res?.epoch) {
      this.epoch = undefined; // the gateway's own seqs: the next event tells
      return false;
    }
    this.resubscribed = false;
    if (res.recovered && res.epoch === this.epoch) return false; // the missed events follow
    this.epoch = res.epoch;
    this.lastSeq = res.seq ?? 0;
    return true;
  }
}

function deliver(listener, ev) {
  try {
    listener.onEvent(ev);
  } catch (err) {
    queueMicrotask(() => { throw err; }); // reported, not swallowed, not breaking the others
  }
}

/** The details.reason of requests that were in flight on a lost socket. */
export const REASON_LOST = 'connection_lost';

function lostConnection(err) {
  return err instanceof StreamgateError && err.details.reason === REASON_LOST;
}

function authError(reason) {
  return new StreamgateError('UNAUTHENTICATED', 401, reason || 'the credentials were refused');
}

/** Turns http(s) into ws(s) and resolves relative URLs against the page. */
function socketURL(url) {
  const base = globalThis.location?.href;
  const u = base ? new URL(String(url), base) : new URL(String(url));
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  return u.toString();
}
