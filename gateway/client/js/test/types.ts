// Compiled by tsc (npm run check), never run: the README's use of the
// client type-checks against streamgate.d.ts.
import { connect, StreamgateError, type StreamEvent } from '../streamgate.js';

export async function readme(token: string, signal: AbortSignal): Promise<void> {
  const s = await connect('ws://127.0.0.1:8080/v3/socket', { token, reconnect: { initialDelay: 250 }, onState: (st) => console.log(st) });
  const user = await s.request<{ id: string; name: string }>('GET_USER', 'alice');
  console.log(user.name.toUpperCase());
  await s.request('UPDATE_USER', 1, { name: 'Oska' });
  const order = await s.post<{ id: string }>('/orders', { lines: [{ item_id: 'book', quantity: 1 }] });
  const unsub = s.subscribe(`orders/${order.id}`, (ev: StreamEvent<{ status: string }>) => console.log(ev.seq, ev.data.status, ev.gap, ev.missed));
  await unsub.ready;
  try {
    await s.post(`/orders/${order.id}/pay`, { gateway: 'B' }, { idempotencyKey: `pay-${order.id}`, timeout: 15000, signal });
  } catch (err) {
    if (err instanceof StreamgateError) console.log(err.code, err.status, err.details);
  }
  await s.get('/users/1');
  await s.put('/users/1', {});
  await s.patch('/users/1', {});
  await s.delete('/users/1');
  await s.fetch('GET', '/items');
  unsub();
  s.close();
}
