// Tests of the client against a real gateway and the shop's services. The
// Go test TestJSClient (tools/streamgate/internal/stack) starts a stack and
// runs these with its address and credentials in the environment:
//
//   STREAMGATE_URL          the REST edge, e.g. http://127.0.0.1:8080
//   STREAMGATE_ADMIN_KEY    an API key with the admin role
//   STREAMGATE_USER         a user id, and STREAMGATE_USER_TOKEN its JWT
//   STREAMGATE_OTHER_TOKEN  another user's JWT
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, StreamgateError, CLOSE_UNAUTHORIZED } from '../streamgate.js';
import { within, collector, recordingWebSocket, stateWatcher } from './support.js';

const env = process.env;
const skip = env.STREAMGATE_URL ? false : 'STREAMGATE_URL is not set: run TestJSClient (go test ./tools/streamgate/internal/stack -run TestJSClient)';
const adminKey = env.STREAMGATE_ADMIN_KEY;
const user = env.STREAMGATE_USER;
const userToken = env.STREAMGATE_USER_TOKEN;
const otherToken = env.STREAMGATE_OTHER_TOKEN;

const cardOK = '4242424242424242';
const cardHangs = '4000000000000119'; // the sandbox answers after the provider timeout (2s)

/** A URL of the socket of a version. */
function socketURL(version = 'v3') {
  return `${env.STREAMGATE_URL.replace(/^http/, 'ws')}/${version}/socket`;
}

/** Sessions opened by a test, closed after it. */
const open = [];
async function session(token, options = {}, version = 'v3') {
  const s = await connect(socketURL(version), { token, ...options });
  open.push(s);
  return s;
}

/** REST with the admin key: fixtures come in the other way. */
async function rest(method, path, body, key = adminKey, headers = {}) {
  const res = await fetch(`${env.STREAMGATE_URL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const envelope = await res.json();
  assert.ok(envelope.ok, `${method} ${path}: ${res.status} ${JSON.stringify(envelope)}`);
  return envelope.result;
}

let item; // an item with stock, made by the admin
before(async () => {
  if (skip) return;
  item = await rest('POST', '/v1/items', { name: 'js widget', price_cents: 700, stock: 100 });
  await rest('POST', '/v1/users', { id: user, name: 'JS Alice', email: `${user}@example.com` });
});
after(() => {
  for (const s of open) s.close();
});

/** A new order of the user for one of item. */
async function newOrder(s, quantity = 1) {
  return s.post('/orders', { lines: [{ item_id: item.id, quantity }] });
}

describe('requests', { skip }, () => {
  it('by action, in the seed form', async () => {
    const admin = await session(adminKey);
    const created = await admin.request('CREATE_ITEM', null, { name: 'by action', price_cents: 100, stock: 5 });
    assert.equal(created.name, 'by action');
    assert.deepEqual(await admin.request('GET_ITEM', created.id), created);
    const updated = await admin.request('UPDATE_ITEM', created.id, { price_cents: 250 });
    assert.equal(updated.price_cents, 250);

    const alice = await session(userToken);
    const me = await alice.request('GET_USER', user);
    assert.equal(me.id, user);
    const renamed = await alice.request('UPDATE_USER', user, { name: 'Oska' });
    assert.equal(renamed.name, 'Oska');
  });

  it('by method and path', async () => {
    const admin = await session(adminKey);
    const created = await admin.post('/items', { name: 'by path', price_cents: 100, stock: 5 });
    assert.deepEqual(await admin.get(`/items/${created.id}`), created);
    assert.equal((await admin.patch(`/items/${created.id}`, { stock: 6 })).stock, 6);
    assert.equal((await admin.put(`/items/${created.id}`, { stock: 7 })).stock, 7);
    assert.equal((await admin.fetch('get', `/items/${created.id}`)).stock, 7);
    await admin.delete(`/items/${created.id}`);
    await assert.rejects(admin.get(`/items/${created.id}`), { code: 'NOT_FOUND', status: 404 });
  });

  it('anonymous sockets reach anonymous routes only', async () => {
    const anon = await session(undefined);
    assert.equal((await anon.get(`/items/${item.id}`)).id, item.id);
    await assert.rejects(anon.get('/orders'), { code: 'UNAUTHENTICATED', status: 401 });
  });
});

describe('errors', { skip }, () => {
  it('carry code, status and message', async () => {
    const alice = await session(userToken);
    const err = await alice.get('/items/no-such-item').then(() => null, (e) => e);
    assert.ok(err instanceof StreamgateError && err instanceof Error, `got ${err}`);
    assert.equal(err.code, 'NOT_FOUND');
    assert.equal(err.status, 404);
    assert.ok(err.message.length > 0);
    await assert.rejects(alice.post('/items', { name: 'x', price_cents: 1 }), { code: 'PERMISSION_DENIED', status: 403 });
    await assert.rejects(alice.request('NO_SUCH_ACTION', 1), { name: 'StreamgateError', status: 404 });
  });

  it('a refused token rejects connect: close code 4401, no reconnect', async () => {
    const states = [];
    const err = await connect(socketURL(), { token: 'not-a-valid-token', onState: (s) => states.push(s) }).then(() => null, (e) => e);
    assert.ok(err instanceof StreamgateError, `got ${err}`);
    assert.equal(err.code, 'UNAUTHENTICATED');
    assert.equal(err.status, 401);
    assert.equal(CLOSE_UNAUTHORIZED, 4401);
    assert.ok(!states.includes('open') && !states.includes('reconnecting'), states.join());
  });
});

describe('in flight', { skip }, () => {
  it('answers come back out of order, matched by id', async () => {
    const alice = await session(userToken);
    const order = await newOrder(alice);
    const settled = [];
    const slow = alice.post(`/orders/${order.id}/pay`, { gateway: 'A', card: cardHangs }, { idempotencyKey: `slow-${order.id}` })
      .finally(() => settled.push('slow'));
    const fast = alice.get(`/items/${item.id}`).finally(() => settled.push('fast'));
    assert.equal((await fast).id, item.id);
    await slow.catch(() => {}); // the hanging card ends in an error: only the order matters here
    assert.deepEqual(settled, ['fast', 'slow']);
  });

  it('an AbortSignal cancels: the promise rejects and a cancel frame names the request', async () => {
    const rec = recordingWebSocket();
    const alice = await session(userToken, { WebSocket: rec.WebSocket });
    const order = await newOrder(alice);
    const ac = new AbortController();
    const pay = alice.post(`/orders/${order.id}/pay`, { gateway: 'A', card: cardHangs }, { signal: ac.signal, idempotencyKey: `cancel-${order.id}` });
    await alice.get(`/items/${item.id}`); // the pay frame went out before this answer
    const payFrame = rec.sent.find((f) => f.path === `/orders/${order.id}/pay`);
    assert.ok(payFrame, JSON.stringify(rec.sent));
    ac.abort(new Error('the person left'));
    await assert.rejects(pay, { message: 'the person left' });
    assert.deepEqual(rec.sent.at(-1), { type: 'cancel', id: payFrame.id });
    assert.equal((await alice.get(`/items/${item.id}`)).id, item.id, 'the socket still serves');
  });

  it('a timeout is sent as timeout_ms and rejects with DEADLINE_EXCEEDED', async () => {
    const rec = recordingWebSocket();
    const alice = await session(userToken, { WebSocket: rec.WebSocket });
    const order = await newOrder(alice);
    await assert.rejects(
      alice.post(`/orders/${order.id}/pay`, { gateway: 'A', card: cardHangs }, { timeout: 300, idempotencyKey: `timeout-${order.id}` }),
      { code: 'DEADLINE_EXCEEDED', status: 504 });
    assert.equal(rec.sent.find((f) => f.path === `/orders/${order.id}/pay`).timeout_ms, 300);
  });

  it('an idempotency key replays the first answer', async () => {
    const alice = await session(userToken);
    const order = await newOrder(alice);
    const key = `pay-${order.id}`;
    const first = await alice.post(`/orders/${order.id}/pay`, { gateway: 'A', card: cardOK }, { idempotencyKey: key });
    const again = await alice.post(`/orders/${order.id}/pay`, { gateway: 'A', card: cardOK }, { idempotencyKey: key });
    assert.equal(first.status, 'paid');
    assert.deepEqual(again, first);
    const payments = await rest('GET', `/v1/payments?order_id=${order.id}`);
    assert.equal(payments.items.length, 1, JSON.stringify(payments));
  });
});

describe('close', { skip }, () => {
  it('rejects what is in flight and what comes after', async () => {
    const states = [];
    const alice = await session(userToken, { onState: (st) => states.push(st) });
    const order = await newOrder(alice);
    const pay = alice.post(`/orders/${order.id}/pay`, { gateway: 'A', card: cardHangs }, { idempotencyKey: `close-${order.id}` });
    await alice.get(`/items/${item.id}`);
    alice.close();
    await assert.rejects(pay, { code: 'CANCELED' });
    await assert.rejects(alice.get(`/items/${item.id}`), { code: 'CANCELED' });
    assert.deepEqual(states, ['open', 'closed']);
  });
});

describe('reconnect', { skip }, () => {
  it('a lost socket fails what was in flight, opens again, and serves', async () => {
    const rec = recordingWebSocket();
    const states = stateWatcher();
    const alice = await session(userToken, { WebSocket: rec.WebSocket, onState: states.onState, reconnect: { initialDelay: 20, maxDelay: 200 } });
    const order = await newOrder(alice);
    const inFlight = alice.post(`/orders/${order.id}/pay`, { gateway: 'A', card: cardHangs }, { idempotencyKey: `lost-${order.id}` });
    await alice.get(`/items/${item.id}`);
    const reconnecting = states.next('reconnecting');
    const reopened = states.next('open');
    rec.sockets.at(-1).close(4000, 'test: connection lost');
    await assert.rejects(inFlight, { code: 'UNAVAILABLE', details: { reason: 'connection_lost' } });
    await reconnecting;
    await reopened;
    assert.equal(rec.sockets.length, 2);
    assert.equal((await alice.get(`/items/${item.id}`)).id, item.id);
    // signed in again: a route for users only
    assert.equal((await alice.request('GET_USER', user)).id, user);
    assert.equal(rec.sent.filter((f) => f.type === 'auth').length, 2);
  });

  it('requests made while away wait for the next socket', async () => {
    const rec = recordingWebSocket();
    const states = stateWatcher();
    const alice = await session(userToken, { WebSocket: rec.WebSocket, onState: states.onState, reconnect: { initialDelay: 20, maxDelay: 100 } });
    rec.blocked = true;
    const reconnecting = states.next('reconnecting');
    rec.sockets.at(-1).close(4000, 'test: connection lost');
    await reconnecting;
    await within(rec.refused.p, 'a refused attempt');
    const waiting = alice.get(`/items/${item.id}`);
    const reopened = states.next('open');
    rec.blocked = false;
    await reopened;
    assert.equal((await waiting).id, item.id);
    assert.ok(rec.sockets.length >= 3, `${rec.sockets.length} sockets: the first, a refused one, the last`);
  });
});

describe('events', { skip }, () => {
  it('every change of an item arrives, or is counted by the state that replaced it, in seq order', async () => {
    const admin = await session(adminKey);
    const it = await admin.post('/items', { name: 'watched', price_cents: 100, stock: 10 });
    const alice = await session(userToken);
    const got = collector();
    const unsub = alice.subscribe(`items/${it.id}`, got.onEvent);
    await unsub.ready;
    for (const stock of [11, 12, 13]) await admin.patch(`/items/${it.id}`, { stock });
    await got.next((ev) => ev.data.stock === 13, 'the third change');
    // items are conflated (the default): a client that keeps up gets every
    // change; one the gateway could not write to in time (a starved
    // machine) gets the latest state, whose skipped counts the changes it
    // replaced. Either way none goes unaccounted, and seq counts them all.
    const changes = got.events.filter((ev) => [11, 12, 13].includes(ev.data.stock));
    const stocks = changes.map((ev) => ev.data.stock);
    assert.deepEqual(stocks, [...stocks].sort(), JSON.stringify(got.events));
    assert.equal(stocks.at(-1), 13);
    assert.equal(changes.reduce((n, ev) => n + 1 + (ev.skipped ?? 0), 0), 3, JSON.stringify(got.events));
    for (let i = 1; i < got.events.length; i++) assert.equal(got.events[i].seq, got.events[i - 1].seq + 1 + (got.events[i].skipped ?? 0));
    assert.ok(got.events.every((ev) => ev.topic === `items/${it.id}` && !ev.gap), JSON.stringify(got.events));
    unsub();
  });

  it('a subscription to what the caller may not read is refused as a GET would be', async () => {
    const alice = await session(userToken);
    const order = await newOrder(alice);
    const bob = await session(otherToken);
    const theirs = bob.subscribe(`orders/${order.id}`, () => assert.fail('bob heard of alice\'s order'));
    await assert.rejects(theirs.ready, { code: 'NOT_FOUND', status: 404 });
    await assert.rejects(alice.subscribe('items/no-such-item', () => {}).ready, { status: 404 });
  });

  it('paying an order shows its status and the item\'s stock changing', async () => {
    const admin = await session(adminKey);
    const it = await admin.post('/items', { name: 'paid for', price_cents: 300, stock: 4 });
    const alice = await session(userToken);
    const order = await alice.post('/orders', { lines: [{ item_id: it.id, quantity: 3 }] });
    const orderEvents = collector();
    const itemEvents = collector();
    const subs = [alice.subscribe(`orders/${order.id}`, orderEvents.onEvent), alice.subscribe(`items/${it.id}`, itemEvents.onEvent)];
    await Promise.all(subs.map((u) => u.ready));
    await alice.post(`/orders/${order.id}/pay`, { gateway: 'B', card: cardOK }, { idempotencyKey: `events-${order.id}` });
    const paid = await orderEvents.next((ev) => ev.data.status === 'paid', 'the paid order');
    assert.equal(paid.data.id, order.id);
    assert.ok(orderEvents.events.some((ev) => ev.data.status === 'paying'), 'paying before paid');
    await itemEvents.next((ev) => ev.data.stock === 1, 'the stock taken');
  });

  it('after a reconnect the topic is subscribed again: resumed from JetStream, or the gap reported', async () => {
    const admin = await session(adminKey);
    const it = await admin.post('/items', { name: 'gap', price_cents: 100, stock: 50 });
    const topic = `items/${it.id}`;
    // A second watcher keeps the gateway's count of the topic going.
    const watcher = collector();
    const keep = (await session(otherToken)).subscribe(topic, watcher.onEvent);
    await keep.ready;

    const rec = recordingWebSocket();
    const states = stateWatcher();
    const alice = await session(userToken, { WebSocket: rec.WebSocket, onState: states.onState, reconnect: { initialDelay: 20, maxDelay: 100 } });
    const got = collector();
    await alice.subscribe(topic, got.onEvent).ready;
    await admin.patch(`/items/${it.id}`, { stock: 49 });
    const before = await got.next((ev) => ev.data.stock === 49, 'the first change');

    rec.blocked = true;
    const reconnecting = states.next('reconnecting');
    rec.sockets.at(-1).close(4000, 'test: connection lost');
    await reconnecting;
    await within(rec.refused.p, 'a refused attempt');
    await admin.patch(`/items/${it.id}`, { stock: 48 }); // missed
    await watcher.next((ev) => ev.data.stock === 48, 'the change while away');
    const reopened = states.next('open');
    rec.blocked = false;
    await reopened; // signed in and subscribed again

    await admin.patch(`/items/${it.id}`, { stock: 47 });
    const after = await got.next((ev) => ev.data.stock === 47, 'a change after the reconnect');
    if (before.epoch !== undefined) {
      // Events from JetStream (a stack on NATS): the topic resumes from the
      // last seq seen, the missed change first, nothing twice, no gap.
      const stocks = got.events.filter((ev) => !ev.gap).map((ev) => ev.data.stock);
      assert.deepEqual(stocks, [49, 48, 47]);
      assert.ok(!got.events.some((ev) => ev.gap), 'no gap when the gateway still holds what was missed');
      assert.ok(after.seq > before.seq);
    } else {
      assert.equal(after.seq, before.seq + 2);
      assert.equal(after.gap, true);
      assert.equal(after.missed, 1);
      assert.ok(!got.events.some((ev) => ev.data.stock === 48), 'nothing arrives while away');
    }
    assert.equal(rec.sent.filter((f) => f.type === 'subscribe' && f.topic === topic).length, 2);
  });
});
