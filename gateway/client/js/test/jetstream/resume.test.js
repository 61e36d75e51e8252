// The client's resume against gateways that read events from JetStream
// (the gateway's events: block). The Go test TestJSClientResumes (package
// gateway) starts two such gateways in front of one service on an
// embedded NATS and runs this file with, in the environment:
//
//   STREAMGATE_EVENTS_URL    the first gateway's REST edge
//   STREAMGATE_EVENTS_URL2   the second's
//   STREAMGATE_ADMIN_KEY     an API key with the admin role
//
// orders/{id} topics: PUT /v1/orders/ID publishes the body as the order's
// event; orders/tiny lives in a window of 1 KiB.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../streamgate.js';
import { within, collector, recordingWebSocket, stateWatcher } from '../support.js';

const env = process.env;
const skip = env.STREAMGATE_EVENTS_URL ? false : 'STREAMGATE_EVENTS_URL is not set: run TestJSClientResumes (go test ./gateway -run TestJSClientResumes)';

const socketURL = (base) => `${base.replace(/^http/, 'ws')}/v1/socket`;

async function put(id, body) {
  const res = await fetch(`${env.STREAMGATE_EVENTS_URL}/v1/orders/${id}`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${env.STREAMGATE_ADMIN_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, `PUT ${id}: ${res.status} ${await res.text()}`);
}

const open = [];
after(() => {
  for (const s of open) s.close();
});

/** A session on the first gateway whose socket the test breaks. */
async function breakable() {
  const rec = recordingWebSocket();
  const states = stateWatcher();
  const s = await connect(socketURL(env.STREAMGATE_EVENTS_URL), {
    token: env.STREAMGATE_ADMIN_KEY, WebSocket: rec.WebSocket, onState: states.onState, reconnect: { initialDelay: 20, maxDelay: 100 },
  });
  open.push(s);
  /** Breaks the socket; while away, runs meanwhile; then reconnects (to url, when given). */
  async function away(meanwhile, url) {
    rec.blocked = true;
    const reconnecting = states.next('reconnecting');
    rec.sockets.at(-1).close(4000, 'test: connection lost');
    await reconnecting;
    await within(rec.refused.p, 'a refused attempt');
    await meanwhile();
    if (url) rec.target = socketURL(url);
    const reopened = states.next('open');
    rec.blocked = false;
    await reopened;
  }
  return { s, rec, away };
}

describe('resume from JetStream', { skip }, () => {
  it('missed events come after a reconnect to another gateway, each once, in order', async () => {
    const { s, rec, away } = await breakable();
    const got = collector();
    await s.subscribe('orders/j1', got.onEvent).ready;
    await put('j1', { n: 0 });
    await got.next((ev) => ev.data?.n === 0, 'the first event');

    await away(async () => {
      await put('j1', { n: 1 });
      await put('j1', { n: 2 });
    }, env.STREAMGATE_EVENTS_URL2);
    await put('j1', { n: 3 });
    await got.next((ev) => ev.data?.n === 3, 'an event after the reconnect');

    assert.deepEqual(got.events.map((ev) => ev.data?.n), [0, 1, 2, 3]);
    assert.ok(got.events.every((ev) => !ev.gap && ev.epoch === got.events[0].epoch), JSON.stringify(got.events));
    for (let i = 1; i < got.events.length; i++) assert.ok(got.events[i].seq > got.events[i - 1].seq, 'seqs increase');
    const subs = rec.sent.filter((f) => f.type === 'subscribe' && f.topic === 'orders/j1');
    assert.equal(subs.length, 2);
    assert.equal(subs[1].since, got.events[0].seq);
    assert.equal(subs[1].epoch, got.events[0].epoch);
  });

  it('past the window, a gap marker with recovered: false says to read again', async () => {
    const { s, away } = await breakable();
    const got = collector();
    await s.subscribe('orders/tiny', got.onEvent).ready;
    await put('tiny', { n: 0 });
    await got.next((ev) => ev.data?.n === 0, 'the first event');

    await away(async () => {
      for (let i = 1; i <= 40; i++) await put('tiny', { n: i, pad: 'x'.repeat(64) }); // more than 1 KiB
    });
    const marker = await got.next((ev) => ev.gap, 'the gap marker');
    assert.equal(marker.recovered, false);
    assert.equal(marker.data, null);
    await put('tiny', { n: 100 });
    const after = await got.next((ev) => ev.data?.n === 100, 'a live event after the marker');
    assert.ok(after.seq > marker.seq, `seq ${after.seq} after the marker's ${marker.seq}`);
    assert.ok(!got.events.some((ev) => ev.data?.n > 0 && ev.data?.n < 100), 'the dropped events do not come');
  });
});
