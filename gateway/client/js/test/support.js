// Helpers of the client's tests (not a test file): waits bounded in
// time, an event collector, a WebSocket a test can break, a state
// watcher.

/** waitBound bounds every wait for something the gateway sends. */
export const waitBound = 20_000;

/** A promise and its resolve, for a value another callback produces. */
export function signal() {
  let resolve;
  const p = new Promise((r) => { resolve = r; });
  return { p, resolve };
}

/** Settles with p, or rejects after ms with what was awaited. */
export function within(p, what, ms = waitBound) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms}ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Collects a subscription's events; next(pred) waits for a matching one. */
export function collector() {
  const events = [];
  const waiters = [];
  return {
    events,
    onEvent: (ev) => {
      events.push(ev);
      for (const w of [...waiters]) {
        if (w.pred(ev)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(ev);
        }
      }
    },
    next(pred, what) {
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      const s = signal();
      waiters.push({ pred, resolve: s.resolve });
      return within(s.p, what);
    },
  };
}

/**
 * A WebSocket that records the frames the client sends, keeps its
 * instances (so a test can break one), can refuse to connect, and can
 * send the next connection elsewhere (target).
 */
export function recordingWebSocket() {
  const rec = { sent: [], sockets: [], blocked: false, target: undefined, refused: signal() };
  rec.WebSocket = class extends WebSocket {
    constructor(url, protocols) {
      // a closed port: the connection is refused, as when the gateway is
      // away; target sends the connection to another gateway
      super(rec.blocked ? 'ws://127.0.0.1:1/' : (rec.target ?? url), protocols);
      rec.sockets.push(this);
      if (rec.blocked) rec.refused.resolve();
    }
    send(data) {
      rec.sent.push(JSON.parse(data));
      super.send(data);
    }
  };
  return rec;
}

/** Waits until onState reports state. */
export function stateWatcher() {
  const waiters = new Map();
  return {
    onState: (state) => waiters.get(state)?.resolve(),
    next(state) {
      const s = signal();
      waiters.set(state, s);
      return within(s.p, `state ${state}`);
    },
  };
}
