// The Node inventory (shop/inventory) over real grpc-js loopback calls, on
// the memory store and, when STREAMGATE_TEST_POSTGRES is set, on
// PostgreSQL in a schema of its own (dropped after).
import { test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { createServer } from "../index.js";
import { dial } from "../testing/client.js";
import { register } from "../shop/inventory/service.js";
import { MemoryStore } from "../shop/inventory/memory.js";
import { PostgresStore } from "../shop/inventory/postgres.js";
import { fingerprint } from "../shop/lib/once.js";

const SECRET = "inv-secret";
const ADMIN = { principal: { subject: "root", roles: ["admin"] } };
const USER = { principal: { subject: "alice", roles: /** @type {string[]} */ ([]) } };

/** @type {Record<string, (t: import("node:test").TestContext) => Promise<any>>} */
const stores = { memory: async () => new MemoryStore() };
const PG = process.env.STREAMGATE_TEST_POSTGRES;
if (PG) {
  stores.postgres = async (t) => {
    const schema = `node_inv_test_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
    const admin = new pg.Client({ connectionString: PG });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const st = await PostgresStore.open(`${PG}&search_path=${schema}`);
    t.after(async () => {
      await st.close();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    });
    return st;
  };
}

/**
 * serve starts an inventory on a store and opens a stream to it.
 * @param {import("node:test").TestContext} t
 * @param {any} st
 */
async function serve(t, st) {
  const server = createServer({ name: "inventory", keys: [{ name: "gateway", secret: SECRET, delegate: true, roles: ["admin"] }], signals: [] });
  register(server, st);
  const addr = await server.listen("127.0.0.1:0");
  const client = dial(addr, SECRET);
  const s = client.open();
  t.after(() => {
    s.end();
    client.close();
    server.close();
  });
  /**
   * @param {any} meta
   * @param {string} action
   * @param {string} id
   * @param {unknown} [body]
   */
  const call = (meta, action, id, body) => s.request(action, id, body, { meta });
  return { s, call };
}

for (const [name, open] of Object.entries(stores)) {
  test(`${name}: items, keyed writes, reservations with versions`, async (t) => {
    const { call } = await serve(t, await open(t));
    let r = await call(ADMIN, "CREATE_ITEM", "", { id: "a", name: " A ", price_cents: 100, stock: 5 });
    assert.deepEqual(r.result, { id: "a", name: "A", price_cents: 100, stock: 5 });
    r = await call(USER, "CREATE_ITEM", "", { name: "x", price_cents: 1 });
    assert.equal(r.error.code, "PERMISSION_DENIED");
    r = await call(ADMIN, "CREATE_ITEM", "", { id: "a", name: "x", price_cents: 1 });
    assert.equal(r.error.code, "ALREADY_EXISTS");
    r = await call(ADMIN, "CREATE_ITEM", "", { name: "x", price_cents: 1, colour: "red" });
    assert.equal(r.error.code, "INVALID_ARGUMENT");
    assert.equal(r.error.details.reason, "unknown_field");

    // A keyed create twice: one item, the second answer replayed.
    const keyed = { ...ADMIN, idempotencyKey: "h1:CREATE_ITEM" };
    const first = await call(keyed, "CREATE_ITEM", "", { name: "Lamp", price_cents: 9 });
    const again = await call(keyed, "CREATE_ITEM", "", { price_cents: 9, name: "Lamp" });
    assert.equal(first.replayed, false);
    assert.equal(again.replayed, true);
    assert.deepEqual(again.result, first.result);
    r = await call(keyed, "CREATE_ITEM", "", { name: "Desk", price_cents: 9 });
    assert.equal(r.error.code, "CONFLICT");
    assert.equal(r.error.details.reason, "idempotency_key_reused");
    r = await call(USER, "LIST_ITEMS", "", undefined);
    assert.deepEqual(
      r.result.items.map((/** @type {any} */ it) => it.id),
      ["a", first.result.id],
    );

    r = await call(USER, "RESERVE_STOCK", "p1", { lines: [{ item_id: "a", quantity: 1 }, { item_id: "a", quantity: 1 }] });
    assert.equal(r.result.status, "held");
    assert.equal(r.result.version, 1);
    assert.deepEqual(r.result.reserved, [{ item_id: "a", quantity: 2 }]);
    assert.match(r.result.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    r = await call(USER, "RESERVE_STOCK", "p1", { lines: [{ item_id: "a", quantity: 2 }] });
    assert.equal(r.replayed, true);
    assert.equal(r.result.version, 2);
    r = await call(USER, "RESERVE_STOCK", "p1", { lines: [{ item_id: "a", quantity: 1 }] });
    assert.equal(r.error.details.reason, "reservation_mismatch");
    r = await call(USER, "RESERVE_STOCK", "p2", { lines: [{ item_id: "a", quantity: 9 }] });
    assert.equal(r.error.code, "FAILED_PRECONDITION");
    assert.deepEqual(r.error.details.missing, [{ item_id: "a", requested: 9, in_stock: 3 }]);

    r = await call(ADMIN, "LIST_RESERVATIONS", "", { status: "held" });
    assert.deepEqual(
      r.result.reservations.map((/** @type {any} */ x) => [x.reservation_id, x.version]),
      [["p1", 3]], // every RESERVE_STOCK of a held id moves it on, the mismatched one too (as Go)
    );
    r = await call(USER, "RELEASE_STOCK", "p1", { version: 2 });
    assert.equal(r.error.code, "CONFLICT");
    assert.equal(r.error.details.reason, "reservation_changed");
    assert.equal(r.error.details.version, 3);
    r = await call(USER, "RELEASE_STOCK", "p1", { version: 3 });
    assert.deepEqual(r.result, { reservation_id: "p1", released: [{ item_id: "a", quantity: 2 }], status: "released" });
    r = await call(USER, "RELEASE_STOCK", "p1", undefined);
    assert.equal(r.replayed, true);
    r = await call(USER, "RESERVE_STOCK", "p1", { lines: [{ item_id: "a", quantity: 2 }] });
    assert.equal(r.error.details.reason, "reservation_released");
    r = await call(USER, "RELEASE_STOCK", "never", undefined);
    assert.deepEqual(r.result, { reservation_id: "never", released: [], status: "unknown" });
    r = await call(USER, "GET_ITEM", "a", undefined);
    assert.equal(r.result.stock, 5);
  });

  test(`${name}: 20 concurrent reservations of 1 on a stock of 10: exactly 10 succeed`, async (t) => {
    const { call } = await serve(t, await open(t));
    await call(ADMIN, "CREATE_ITEM", "", { id: "hot", name: "Hot", price_cents: 1, stock: 10 });
    await call(ADMIN, "CREATE_ITEM", "", { id: "cold", name: "Cold", price_cents: 1, stock: 40 });
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call(USER, "RESERVE_STOCK", `pur_${i}`, {
          lines: [
            { item_id: "cold", quantity: 1 },
            { item_id: "hot", quantity: 1 },
          ],
        }),
      ),
    );
    assert.equal(answers.filter((a) => a.ok).length, 10);
    assert.equal(answers.filter((a) => a.error?.code === "FAILED_PRECONDITION").length, 10);
    assert.equal((await call(USER, "GET_ITEM", "hot", undefined)).result.stock, 0);
    assert.equal((await call(USER, "GET_ITEM", "cold", undefined)).result.stock, 30);

    // One id 20 times at once: stock taken once.
    await call(ADMIN, "UPDATE_ITEM", "hot", { stock: 5 });
    const same = await Promise.all(Array.from({ length: 20 }, () => call(USER, "RESERVE_STOCK", "one", { lines: [{ item_id: "hot", quantity: 2 }] })));
    assert.equal(same.filter((a) => a.ok && !a.replayed).length, 1);
    assert.equal(same.filter((a) => a.ok && a.replayed).length, 19);
    assert.equal((await call(USER, "GET_ITEM", "hot", undefined)).result.stock, 3);
  });

  test(`${name}: every change of an item is published on items/{id}`, async (t) => {
    const { s, call } = await serve(t, await open(t));
    s.send({ frame: { case: "subscribe", value: { topic: "items/*" } } });
    await s.next((f) => f.frame.case === "subscribed");
    const event = async () => {
      const f = await s.next((f) => f.frame.case === "event");
      return { topic: f.frame.value.topic, seq: f.frame.value.seq, data: JSON.parse(Buffer.from(f.frame.value.dataRaw ?? f.frame.value.data).toString()) };
    };
    await call(ADMIN, "CREATE_ITEM", "", { id: "book", name: "Book", price_cents: 1500, stock: 10 });
    assert.deepEqual(await event(), { topic: "items/book", seq: 1n, data: { id: "book", name: "Book", price_cents: 1500, stock: 10 } });
    await call(USER, "RESERVE_STOCK", "r1", { lines: [{ item_id: "book", quantity: 2 }] });
    assert.deepEqual((await event()).data.stock, 8);
    await call(USER, "RESERVE_STOCK", "r1", { lines: [{ item_id: "book", quantity: 2 }] }); // a replay: no event
    await call(ADMIN, "DELETE_ITEM", "book", undefined);
    assert.deepEqual(await event(), { topic: "items/book", seq: 3n, data: { id: "book", deleted: true } });
  });
}

test("fingerprints are Go's once.Fingerprint", () => {
  // Computed by Go: once.Fingerprint(&socket.Request{Action: "CREATE_ITEM", Body: `{"price_cents":1, "name":"<a>"}`}).
  assert.equal(fingerprint("CREATE_ITEM", "", { price_cents: 1, name: "<a>" }), GO_FINGERPRINT);
});

const GO_FINGERPRINT = "5e2ec18c67ab762ca666244999209e623d7e0e6cee7eb188613efd178983fddb";
