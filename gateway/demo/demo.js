// The live demo: sign in over the gateway's socket, create an order, pay
// it, and watch the order's status (topic orders/ID) and the item's stock
// (topic items/ID) change as the services publish the changes. The status
// and the stock shown come from the events, not from the answers.
import { connect } from './streamgate.js';

const $ = (id) => document.getElementById(id);

/** @type {import('./streamgate.js').Session | null} */
let session = null;
let subject = ''; // the JWT's sub; '' for an API key
let order = null; // the order being followed
let unsubOrder = () => {};
let unsubItem = () => {};
let followedItem = '';

function log(text) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $('log').prepend(li);
}

function showError(err) {
  const msg = err?.code ? `${err.status} ${err.code}: ${err.message}` : String(err?.message ?? err);
  $('error').textContent = msg;
  log(`error ${msg}`);
}

function clearError() { $('error').textContent = ''; }

function show(id, value) {
  const el = $(id);
  const text = String(value);
  if (el.textContent === text) return;
  el.textContent = text;
  el.classList.remove('changed');
  void el.offsetWidth; // restart the highlight
  el.classList.add('changed');
}

// The subject of a JWT, for greeting; the gateway checks the token.
function tokenSubject(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return '';
  try {
    const json = atob(parts[1].replace(/-/g, '+').replace(/_/g, '/'));
    return JSON.parse(json).sub ?? '';
  } catch {
    return '';
  }
}

// Runs an action of the page: errors are shown, buttons wait.
function action(fn) {
  return async (ev) => {
    ev?.preventDefault();
    const button = ev?.submitter ?? ev?.currentTarget;
    if (button instanceof HTMLButtonElement) button.disabled = true;
    clearError();
    try {
      await fn();
    } catch (err) {
      showError(err);
    } finally {
      if (button instanceof HTMLButtonElement) button.disabled = button.id === 'pay' && !order;
    }
  };
}

async function signIn() {
  session?.close();
  session = null;
  unsubOrder = () => {};
  unsubItem = () => {};
  followedItem = '';
  const token = $('token').value.trim();
  const version = $('version').value;
  const url = new URL(`/${version}/socket`, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  $('conn').textContent = 'connecting';
  session = await connect(url, {
    token,
    onState: (state) => {
      $('conn').textContent = state;
      log(`socket ${state}`);
    },
  });
  $('conn').textContent = 'open';
  subject = tokenSubject(token);
  $('who').textContent = subject ? `as ${subject} (${version})` : `with an API key (${version})`;
  log(`signed in ${subject ? `as ${subject}` : 'with an API key'} on ${version}`);
  $('shop').hidden = false;
  $('live').hidden = false;
  await checkAccount();
  await loadItems();
}

async function checkAccount() {
  $('account').hidden = !subject;
  $('create-user').hidden = true;
  if (!subject) return;
  try {
    await session.request('GET_USER', subject);
    $('account-status').textContent = `user ${subject} exists`;
  } catch (err) {
    if (err.code !== 'NOT_FOUND') throw err;
    $('account-status').textContent = `there is no user ${subject} yet: paying needs one`;
    $('create-user').hidden = false;
  }
}

async function createUser() {
  const u = await session.post('/users', { id: subject, name: subject, email: `${subject}@example.com` });
  log(`created user ${u.id}`);
  await checkAccount();
}

async function loadItems() {
  const page = await session.get('/items');
  const select = $('item');
  const keep = select.value;
  select.replaceChildren();
  for (const it of page.items ?? []) {
    const opt = document.createElement('option');
    opt.value = it.id;
    opt.textContent = itemLabel(it);
    select.append(opt);
  }
  if (keep && [...select.options].some((o) => o.value === keep)) select.value = keep;
  if (!select.options.length) log('no items yet: an admin adds one below');
  await followItem(select.value);
}

async function createItem() {
  const it = await session.post('/items', {
    name: $('new-item-name').value,
    price_cents: Number($('new-item-price').value),
    stock: Number($('new-item-stock').value),
  });
  log(`created item ${it.id}`);
  await loadItems();
  $('item').value = it.id;
  await followItem(it.id);
}

// followItem shows an item's stock and subscribes to its changes.
async function followItem(id) {
  if (!id || id === followedItem) return;
  unsubItem();
  followedItem = id;
  const it = await session.get(`/items/${encodeURIComponent(id)}`);
  show('item-name', `${it.name} (${it.id})`);
  show('item-stock', it.stock ?? 0);
  const unsub = session.subscribe(`items/${id}`, (ev) => {
    if (ev.error) return showError(ev.error);
    if (ev.data.deleted) {
      log(`event items/${id} #${ev.seq}: deleted`);
      if (followedItem === id) show('item-stock', 'deleted');
      return;
    }
    log(`event items/${id} #${ev.seq}${ev.gap ? ' (after a gap)' : ''}: stock ${ev.data.stock ?? 0}, price ${money(ev.data.price_cents)}`);
    if (followedItem === id) show('item-stock', ev.data.stock ?? 0);
    const opt = [...$('item').options].find((o) => o.value === id);
    if (opt && !ev.data.deleted) opt.textContent = itemLabel(ev.data);
  });
  unsubItem = unsub;
  await unsub.ready;
  log(`watching items/${id}`);
}

async function createOrder() {
  const itemID = $('item').value;
  if (!itemID) throw new Error('choose an item first (or add one)');
  await followItem(itemID);
  const o = await session.post('/orders', { lines: [{ item_id: itemID, quantity: Number($('quantity').value) }] });
  unsubOrder();
  order = o;
  show('order-id', o.id);
  show('order-status', o.status);
  show('order-total', money(o.total_cents));
  log(`created order ${o.id}: ${o.status}, ${money(o.total_cents)}`);
  const unsub = session.subscribe(`orders/${o.id}`, (ev) => {
    if (ev.error) return showError(ev.error);
    if (ev.data.deleted) {
      log(`event orders/${o.id} #${ev.seq}: deleted`);
      if (order?.id === o.id) show('order-status', 'deleted');
      return;
    }
    log(`event orders/${o.id} #${ev.seq}${ev.gap ? ' (after a gap)' : ''}: ${ev.data.status}, version ${ev.data.version}`);
    if (order?.id === o.id) {
      show('order-status', ev.data.status);
      show('order-total', money(ev.data.total_cents));
    }
  });
  unsubOrder = unsub;
  await unsub.ready;
  log(`watching orders/${o.id}`);
  $('pay').disabled = false;
}

async function pay() {
  if (!order) throw new Error('create an order first');
  const gateway = $('gateway').value;
  // The same key for the same order and gateway: a second click replays
  // the first answer instead of paying twice.
  const paid = await session.post(`/orders/${encodeURIComponent(order.id)}/pay`,
    { gateway, card: $('card').value.trim() },
    { idempotencyKey: `demo-pay-${order.id}-${gateway}` });
  log(`pay answered: order ${paid.id ?? order.id} ${paid.status ?? ''}`);
}

function itemLabel(it) {
  return `${it.name} (${it.id}) — ${money(it.price_cents)}, stock ${it.stock ?? 0}`;
}

function money(cents) {
  return typeof cents === 'number' ? `${(cents / 100).toFixed(2)}` : '—';
}

// v1 pays with gateway A only; v2 and v3 take B.
$('version').addEventListener('change', () => {
  $('gateway').value = $('version').value === 'v1' ? 'A' : 'B';
});
$('signin-form').addEventListener('submit', action(async () => {
  try {
    await signIn();
  } catch (err) {
    if (!session) $('conn').textContent = 'signed out';
    throw err;
  }
}));
$('create-user').addEventListener('click', action(createUser));
$('refresh-items').addEventListener('click', action(loadItems));
$('item').addEventListener('change', action(() => followItem($('item').value)));
$('order-form').addEventListener('submit', action(createOrder));
$('pay-form').addEventListener('submit', action(pay));
$('item-form').addEventListener('submit', action(createItem));
document.body.dataset.ready = 'true';
