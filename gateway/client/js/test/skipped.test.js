// The client's reading of conflated events ("skipped"), against a
// scripted socket: the gateway only conflates for a client that reads
// slower than events come, which node's WebSocket never is, so the
// frames a slow client would get are played here (the gateway's side is
// tested in Go: gateway/ws_conflate_test.go).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../streamgate.js';
import { collector } from './support.js';

/**
 * A WebSocket that answers subscribe frames (seq 0) and lets the test
 * send frames as the gateway would.
 */
function scriptedWebSocket() {
  const script = { socket: undefined };
  script.WebSocket = class {
    constructor() {
      this.readyState = 0;
      script.socket = this;
      queueMicrotask(() => { this.readyState = 1; this.onopen?.(); });
    }
    send(data) {
      const f = JSON.parse(data);
      if (f.type === 'subscribe') {
        script.push({ type: 'response', id: f.id, status: 200, ok: true, result: { topic: f.topic, subscribed: true, seq: 0, recovered: false } });
      }
    }
    close() { this.readyState = 3; }
  };
  script.push = (f) => queueMicrotask(() => script.socket.onmessage?.({ data: JSON.stringify(f) }));
  return script;
}

describe('conflated events', () => {
  it('an event with skipped is the latest state: delivered with skipped, no gap, no missed', async () => {
    const script = scriptedWebSocket();
    const s = await connect('ws://gateway.test/v1/socket', { WebSocket: script.WebSocket, reconnect: false });
    const got = collector();
    const unsub = s.subscribe('items/i1', got.onEvent);
    await unsub.ready;
    script.push({ type: 'event', topic: 'items/i1', seq: 1, data: { stock: 1 } });
    script.push({ type: 'event', skipped: 3, topic: 'items/i1', seq: 5, data: { stock: 5 } });
    script.push({ type: 'event', topic: 'items/i1', seq: 6, data: { stock: 6 } });
    script.push({ type: 'event', skipped: 1, topic: 'items/i1', seq: 9, data: { stock: 9 } }); // seq 7 and 8 gone: one skipped, one missed
    await got.next((ev) => ev.seq === 9, 'the last event');
    assert.deepEqual(got.events.map((ev) => [ev.seq, ev.gap, ev.skipped, ev.missed]), [
      [1, false, undefined, undefined],
      [5, false, 3, undefined],
      [6, false, undefined, undefined],
      [9, true, 1, 1],
    ]);
    unsub();
    s.close();
  });

  it('with epoch seqs, skipped is passed on', async () => {
    const script = scriptedWebSocket();
    const s = await connect('ws://gateway.test/v1/socket', { WebSocket: script.WebSocket, reconnect: false });
    const got = collector();
    const unsub = s.subscribe('orders/o1', got.onEvent);
    await unsub.ready;
    script.push({ type: 'event', skipped: 2, topic: 'orders/o1', seq: 40, epoch: 'e1', data: { n: 3 } });
    const ev = await got.next((e) => e.seq === 40, 'the event');
    assert.equal(ev.skipped, 2);
    assert.equal(ev.gap, false);
    unsub();
    s.close();
  });
});
