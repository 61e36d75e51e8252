// The runtime through real @grpc/grpc-js calls over loopback.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { createServer, SocketError, Codes, idempotent } from "../index.js";
import { dial } from "../testing/client.js";

const SECRET = "test-secret";

/**
 * serve starts a server with the actions setup registers and a client of
 * it; both end with the test.
 * @param {import("node:test").TestContext} t
 * @param {(s: import("../index.js").Server) => void} setup
 * @param {Partial<import("../index.js").ServerConfig>} [config]
 */
async function serve(t, setup, config = {}) {
  /** @type {{level: string, msg: string, fields: any}[]} */
  const logs = [];
  const server = createServer({
    name: "svc",
    version: "1.2.3",
    keys: [{ name: "gateway", secret: SECRET, delegate: true }],
    logger: (level, msg, fields) => logs.push({ level, msg, fields }),
    signals: [],
    ...config,
  });
  setup(server);
  const addr = await server.listen("127.0.0.1:0");
  const client = dial(addr, SECRET);
  t.after(() => {
    client.close();
    server.close();
  });
  return { server, addr, client, logs };
}

/**
 * until polls cond until it holds, failing after ms.
 * @param {() => boolean} cond
 * @param {number} [ms]
 */
async function until(cond, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setImmediate(r));
  }
}

/** gate returns a promise and its release. */
function gate() {
  /** @type {() => void} */
  let open = () => {};
  const p = new Promise((r) => (open = () => r(undefined)));
  return { p, open };
}

test("answers in the form the body came in; meta reaches the handler", async (t) => {
  const { client } = await serve(t, (s) =>
    s.handle("ECHO", (req, ctx) => ({ id: req.id, body: req.body, meta: ctx.meta }), { read: true }),
  );
  const st = client.open();
  const headers = await st.headers;
  assert.match(String(headers.get("streamgate-instance")[0]), /^svc-[0-9a-f]{12}$/);
  const meta = { apiVersion: "v2", principal: { subject: "u1", roles: ["admin"] }, idempotencyKey: "k", requestId: "r1", traceparent: "tp" };
  const raw = await st.request("ECHO", "7", { a: 1 }, { meta });
  assert.equal(raw.form, "raw");
  assert.deepEqual(raw.result.body, { a: 1 });
  assert.equal(raw.result.id, "7");
  assert.deepEqual(raw.result.meta.principal, { subject: "u1", roles: ["admin"] });
  assert.equal(raw.result.meta.apiVersion, "v2");
  assert.equal(raw.result.meta.requestId, "r1");
  assert.equal(raw.result.meta.caller, "gateway");
  const value = await st.request("ECHO", "7", { a: 1 }, { raw: false });
  assert.equal(value.form, "value");
  assert.deepEqual(value.result.body, { a: 1 });
  const none = await st.request("ECHO", "");
  assert.equal(none.result.body, null);
  st.end();
  assert.equal((await st.status).code, grpc.status.OK);
});

test("bad frames get the Go runtime's codes and the stream goes on", async (t) => {
  const { client } = await serve(
    t,
    (s) => {
      s.handle("READ", () => "ok", { read: true, versions: ["v2"] });
      s.handle("TAKES", () => "ok", { fields: ["name"] });
    },
    { maxBodyBytes: 1024 },
  );
  const st = client.open();
  /** @param {any} r @param {string} code @param {string} [reason] */
  const want = (r, code, reason) => {
    assert.equal(r.ok, false);
    assert.equal(r.error.code, code, JSON.stringify(r));
    if (reason) assert.equal(r.error.details?.reason, reason);
  };
  want(await st.request("NOPE"), "NOT_FOUND");
  want(await st.request("READ", "", undefined, { meta: { apiVersion: "v1" } }), "NOT_SUPPORTED");
  want(await st.request("READ", "", undefined, { bodyRaw: Buffer.from("{not json"), meta: { apiVersion: "v2" } }), "INVALID_ARGUMENT");
  want(await st.request("READ", "", "x".repeat(2000), { meta: { apiVersion: "v2" } }), "INVALID_ARGUMENT", "body_too_large");
  want(await st.request("TAKES", "", { name: "a", bogus: 1 }), "INVALID_ARGUMENT", "unknown_field");
  want(await st.request("", ""), "INVALID_ARGUMENT");
  st.send({ frame: { case: "request", value: { id: 0n, action: "READ" } } });
  want(await st.answer(0n), "INVALID_ARGUMENT");
  st.send({});
  want(await st.answer(0n), "INVALID_ARGUMENT");
  const ok = await st.request("READ", "", undefined, { meta: { apiVersion: "v2" } });
  assert.equal(ok.result, "ok");
  st.end();
  assert.equal((await st.status).code, grpc.status.OK);
});

test("a frame that does not decode ends only its stream", async (t) => {
  const { client, addr } = await serve(t, (s) => s.handle("READ", () => "ok", { read: true }));
  const garbage = new grpc.Client(addr, grpc.credentials.createInsecure());
  t.after(() => garbage.close());
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${SECRET}`);
  const call = garbage.makeBidiStreamRequest(
    "/streamgate.socket.v1.SocketService/Connect",
    (/** @type {Buffer} */ b) => b,
    (/** @type {Buffer} */ b) => b,
    md,
  );
  call.on("data", () => {});
  call.on("error", () => {});
  const status = new Promise((r) => call.on("status", r));
  call.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a]));
  assert.equal(/** @type {any} */ (await status).code, grpc.status.INTERNAL);
  const st = client.open();
  assert.equal((await st.request("READ")).result, "ok");
  st.end();
});

test("keys: missing, wrong, delegation and action-limited keys", async (t) => {
  const { addr } = await serve(t, (s) => s.handle("READ", (_req, ctx) => ctx.meta.principal, { read: true }), {
    keys: [
      { name: "gateway", secret: SECRET, delegate: true },
      { name: "reporter", secret: "r", roles: ["ops"], actions: ["READ"] },
    ],
  });
  for (const secret of [undefined, "wrong"]) {
    const c = dial(addr, secret);
    const st = c.open();
    const s = /** @type {any} */ (await st.status);
    assert.equal(s.code, grpc.status.UNAUTHENTICATED);
    await assert.rejects(c.describe(), (/** @type {any} */ e) => e.code === grpc.status.UNAUTHENTICATED);
    c.close();
  }
  const c = dial(addr, "r");
  t.after(() => c.close());
  const st = c.open();
  assert.deepEqual((await st.request("READ")).result, { subject: "reporter", roles: ["ops"] });
  const forOther = await st.request("READ", "", undefined, { meta: { principal: { subject: "u1", roles: /** @type {string[]} */ ([]) } } });
  assert.equal(forOther.error.code, "PERMISSION_DENIED");
  st.send({ frame: { case: "subscribe", value: { topic: "things/*" } } });
  const ack = await st.next((f) => f.frame.case === "subscribed");
  assert.equal(ack.frame.value.error.code, "PERMISSION_DENIED");
  st.end();
});

test("a handler's own error is INTERNAL without its cause, which is logged", async (t) => {
  const { client, logs } = await serve(t, (s) => {
    s.handle("BROKEN", () => {
      throw new Error("dial tcp 10.0.0.7:5432: password authentication failed");
    });
    s.handle("REFUSED", () => {
      throw new SocketError(Codes.FAILED_PRECONDITION, "already paid", { reason: "paid" });
    });
    s.handle("WEIRD", () => {
      throw new SocketError("NOT_A_CODE", "x");
    });
    s.handle("NOT_JSON", () => 10n);
  });
  const st = client.open();
  const r = await st.request("BROKEN");
  assert.deepEqual(r.error, { code: "INTERNAL", message: "internal error", details: undefined });
  assert.ok(logs.some((l) => l.level === "error" && String(l.fields.err).includes("password authentication failed")));
  const refused = await st.request("REFUSED");
  assert.equal(refused.error.code, "FAILED_PRECONDITION");
  assert.deepEqual(refused.error.details, { reason: "paid" });
  assert.equal((await st.request("WEIRD")).error.code, "INTERNAL");
  assert.equal((await st.request("NOT_JSON")).error.message, "internal error");
  st.end();
});

test("100 identical concurrent reads share one handler run; another principal or epoch does not", async (t) => {
  let runs = 0;
  const g = gate();
  const { server, client } = await serve(t, (s) => {
    s.handle(
      "GET",
      async (req) => {
        runs++;
        await g.p;
        return { id: req.id, runs };
      },
      { read: true },
    );
  });
  const st = client.open();
  const meta = { principal: { subject: "u1", roles: /** @type {string[]} */ ([]) }, readEpoch: "e1" };
  const ids = [];
  for (let i = 0; i < 99; i++) ids.push(st.sendRequest("GET", "1", { q: 1, r: [1, 2] }, { meta }));
  // The same body with its keys in another order is the same read.
  ids.push(st.sendRequest("GET", "1", { r: [1, 2], q: 1 }, { meta }));
  ids.push(st.sendRequest("GET", "1", { q: 1, r: [1, 2] }, { meta: { ...meta, principal: { subject: "u2", roles: /** @type {string[]} */ ([]) } } }));
  ids.push(st.sendRequest("GET", "1", { q: 1, r: [1, 2] }, { meta: { ...meta, readEpoch: "e2" } }));
  const flights = /** @type {any} */ (server).flights;
  await until(() => [...flights.flights.values()].reduce((n, f) => n + f.waiters, 0) === 102);
  g.open();
  const answers = await Promise.all(ids.map((id) => st.answer(id)));
  assert.ok(answers.every((a) => a.ok));
  t.diagnostic(`100 identical concurrent reads, plus one of another principal and one of another epoch: ${runs} handler runs`);
  assert.equal(runs, 3);
  const desc = await client.describe();
  assert.equal(desc.actions[0].stats.coalesced, 99n);
  st.end();
});

test("a read's cache answers within its TTL; another epoch misses", async (t) => {
  let runs = 0;
  const { client } = await serve(t, (s) => s.handle("GET", () => ++runs, { read: true, cacheTtlMs: 60_000 }));
  const st = client.open();
  assert.equal((await st.request("GET", "1")).result, 1);
  assert.equal((await st.request("GET", "1")).result, 1);
  assert.equal((await st.request("GET", "1", undefined, { meta: { readEpoch: "2" } })).result, 2);
  assert.equal((await st.request("GET", "2")).result, 3);
  st.end();
});

test("deadlines and cancel frames abort the handler's signal", async (t) => {
  /** @type {AbortSignal[]} */
  const signals = [];
  const { client } = await serve(t, (s) =>
    s.handle(
      "WAIT",
      (_req, ctx) =>
        new Promise((_resolve, reject) => {
          signals.push(ctx.signal);
          ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
        }),
      { read: true },
    ),
  );
  const st = client.open();
  const late = await st.request("WAIT", "1", undefined, { timeoutMs: 30 });
  assert.equal(late.error.code, "DEADLINE_EXCEEDED");
  const id = st.sendRequest("WAIT", "2");
  await until(() => signals.length === 2);
  st.send({ frame: { case: "cancel", value: { id } } });
  await until(() => signals[1].aborted);
  // No answer comes for a cancelled request: the next answer is the next request's.
  const after = await st.request("WAIT", "3", undefined, { timeoutMs: 10 });
  assert.equal(after.error.code, "DEADLINE_EXCEEDED");
  assert.equal(st.frames.length, 0);
  st.end();
});

test("a write runs on when its caller's stream breaks; a read does not", async (t) => {
  const g = gate();
  /** @type {AbortSignal | null} */
  let writeSignal = null;
  /** @type {AbortSignal | null} */
  let readSignal = null;
  let stored = 0;
  const { client } = await serve(t, (s) => {
    s.handle("STORE", async (_req, ctx) => {
      writeSignal = ctx.signal;
      await g.p;
      stored++;
      return stored;
    });
    s.handle("LOOK", (_req, ctx) => {
      readSignal = ctx.signal;
      return new Promise(() => {});
    }, { read: true });
  });
  const st = client.open();
  st.sendRequest("STORE");
  st.sendRequest("LOOK");
  await until(() => writeSignal !== null && readSignal !== null);
  st.cancel();
  await until(() => readSignal.aborted);
  assert.equal(writeSignal.aborted, false);
  g.open();
  await until(() => stored === 1);
});

test("in flight per stream is bounded: RESOURCE_EXHAUSTED beyond it", async (t) => {
  const g = gate();
  const { client } = await serve(t, (s) => s.handle("HOLD", () => g.p.then(() => "done"), { read: true }), { maxInFlightPerStream: 4 });
  const st = client.open();
  const ids = [1, 2, 3, 4].map((i) => st.sendRequest("HOLD", String(i)));
  const over = await st.request("HOLD", "5");
  assert.equal(over.error.code, "RESOURCE_EXHAUSTED");
  const dup = await st.request("HOLD", "x", undefined, { reqId: ids[0] });
  assert.equal(dup.error.code, "RESOURCE_EXHAUSTED"); // full first, as Go checks
  g.open();
  for (const id of ids) assert.equal((await st.answer(id)).result, "done");
  st.end();
});

test("an answer over the frame limit becomes INTERNAL for its request alone", async (t) => {
  const { client } = await serve(t, (s) => {
    s.handle("BIG", () => "x".repeat(5 << 20), { read: true });
    s.handle("SMALL", () => "y", { read: true });
  });
  const st = client.open();
  const big = await st.request("BIG");
  assert.equal(big.error.code, "INTERNAL");
  assert.match(big.error.message, /the answer could not be sent: the frame is \d+ bytes; the limit is 4194304/);
  assert.equal((await st.request("SMALL")).result, "y");
  st.end();
});

test("events: seq per topic, patterns, visibility for keys that do not delegate", async (t) => {
  const { server, addr, client } = await serve(t, () => {}, {
    keys: [
      { name: "gateway", secret: SECRET, delegate: true },
      { name: "u1", secret: "u1" },
    ],
  });
  const gw = client.open();
  gw.send({ frame: { case: "subscribe", value: { topic: "orders/*" } } });
  assert.equal((await gw.next((f) => f.frame.case === "subscribed")).frame.value.topic, "orders/*");
  const c = dial(addr, "u1");
  t.after(() => c.close());
  const own = c.open();
  own.send({ frame: { case: "subscribe", value: { topic: "orders/1" } } });
  await own.next((f) => f.frame.case === "subscribed");
  gw.send({ frame: { case: "subscribe", value: { topic: "bad topic" } } });
  assert.equal((await gw.answer(0n)).error.code, "INVALID_ARGUMENT");
  assert.equal(server.publish("orders/1", { n: 1 }, { subjects: ["u2"] }), 1);
  assert.equal(server.publish("orders/1", { n: 2 }, { subjects: ["u1"] }), 2);
  assert.equal(server.publish("users/1", { n: 3 }, { public: true }), 1);
  /** @param {any} f */
  const isEvent = (f) => f.frame.case === "event";
  const e1 = (await gw.next(isEvent)).frame.value;
  const e2 = (await gw.next(isEvent)).frame.value;
  assert.deepEqual([e1.seq, e2.seq], [1n, 2n]);
  assert.deepEqual(e1.visibility.subjects, ["u2"]);
  const mine = (await own.next(isEvent)).frame.value;
  assert.equal(mine.seq, 2n);
  assert.deepEqual(JSON.parse(Buffer.from(mine.data).toString()), { n: 2 });
  assert.throws(() => server.publish("a//b", 1), SocketError);
  own.send({ frame: { case: "unsubscribe", value: { topic: "orders/1" } } });
  gw.end();
  own.end();
});

test("a subscriber that does not read loses events to a gap marker, never the publisher's time", async (t) => {
  const { server, client } = await serve(t, () => {});
  const st = client.open();
  st.send({ frame: { case: "subscribe", value: { topic: "t" } } });
  await st.next((f) => f.frame.case === "subscribed");
  st.call.pause();
  const data = "z".repeat(4096);
  const started = performance.now();
  for (let i = 0; i < 2000; i++) server.publish("t", data);
  const publishMs = performance.now() - started;
  st.call.resume();
  /** @type {bigint[]} */
  const seqs = [];
  let gapAt = -1;
  for (;;) {
    const e = (await st.next((f) => f.frame.case === "event")).frame.value;
    if (e.gap) {
      gapAt = seqs.length;
      server.publish("t", "last"); // seq 2001: after the gap, events flow again
      continue;
    }
    seqs.push(e.seq);
    if (e.seq === 2001n) break;
  }
  t.diagnostic(`2000 events of 4 KiB to a paused subscriber: ${seqs.length} delivered, gap marker after ${gapAt}, publish took ${publishMs.toFixed(0)} ms`);
  assert.ok(gapAt >= 0, "a gap marker came");
  assert.ok(seqs.length < 2000);
  assert.ok(seqs.length >= 256, `the queue's ${256} events came: ${seqs.length}`);
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1]);
  st.end();
});

test("idempotent writes: a key applies once, replays, and refuses another body", async (t) => {
  let n = 0;
  const { client } = await serve(t, (s) => s.handle("ADD", idempotent(() => ({ n: ++n }))));
  const st = client.open();
  const meta = { idempotencyKey: "k1" };
  const first = await st.request("ADD", "", { a: 1 }, { meta });
  const again = await st.request("ADD", "", { a: 1 }, { meta });
  assert.deepEqual([first.result, first.replayed], [{ n: 1 }, false]);
  assert.deepEqual([again.result, again.replayed], [{ n: 1 }, true]);
  const other = await st.request("ADD", "", { a: 2 }, { meta });
  assert.equal(other.error.code, "CONFLICT");
  assert.equal(other.error.details.reason, "idempotency_key_reused");
  assert.equal(n, 1);
  st.end();
});

test("Describe lists the actions with their kinds; Call runs one request", async (t) => {
  const { client } = await serve(t, (s) => {
    s.handle("PUT_X", () => "put", { idempotent: true, doc: "puts" });
    s.handle("GET_X", (req) => req.body, { read: true, public: true, cacheTtlMs: 1500, versions: ["v1", "v2"] });
  });
  const d = await client.describe();
  assert.equal(d.service, "svc");
  assert.equal(d.version, "1.2.3");
  assert.deepEqual(d.actions.map((/** @type {any} */ a) => [a.name, a.kind, a.idempotent, a.public]), [
    ["GET_X", 1, true, true],
    ["PUT_X", 2, true, false],
  ]);
  assert.deepEqual(d.actions[0].versions, ["v1", "v2"]);
  assert.equal(d.actions[0].cacheTtl.nanos, 500_000_000);
  const r = await client.call({ id: 9n, action: "GET_X", payload: { case: "bodyRaw", value: Buffer.from('{"a":1}') }, meta: { apiVersion: "v1" } });
  assert.equal(r.response.id, 9n);
  assert.equal(Buffer.from(r.response.outcome.value).toString(), '{"a":1}');
});

test("shutdown drains: drain frame, new frames refused as draining, in flight answered, new streams refused", async (t) => {
  const g = gate();
  const { server, client } = await serve(t, (s) => s.handle("HOLD", () => g.p.then(() => "done"), { read: true }));
  assert.equal((await client.check("svc")).status, 1);
  const st = client.open();
  const held = st.sendRequest("HOLD");
  await until(() => /** @type {any} */ (server).inFlight === 1);
  const stopped = server.shutdown();
  assert.equal((await st.next((f) => f.frame.case === "drain")).frame.value.reason, "shutdown");
  assert.equal((await client.check("")).status, 2);
  const refused = await st.request("HOLD");
  assert.equal(refused.error.code, "UNAVAILABLE");
  assert.equal(refused.error.details.reason, "draining");
  const late = client.open();
  assert.equal(/** @type {any} */ (await late.status).code, grpc.status.UNAVAILABLE);
  g.open();
  assert.equal((await st.answer(held)).result, "done");
  st.end();
  assert.equal(/** @type {any} */ (await st.status).code, grpc.status.OK);
  await stopped;
});

test("examples/hello.js serves HELLO and exits 0 on SIGTERM", async (t) => {
  const { spawn } = await import("node:child_process");
  const { fileURLToPath } = await import("node:url");
  const script = fileURLToPath(new URL("../examples/hello.js", import.meta.url));
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, HELLO_KEY: "hello-key", HELLO_ADDR: "127.0.0.1:0" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  t.after(() => child.kill("SIGKILL"));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const addr = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (b) => {
      out += b;
      const line = out.split("\n").find((l) => l.includes('"serving"'));
      if (line) resolve(JSON.parse(line).addr);
    });
    child.on("exit", () => reject(new Error("hello.js exited before serving")));
  });
  const c = dial(addr, "hello-key");
  const st = c.open();
  const r = await st.request("HELLO", "ada", undefined, { meta: { principal: { subject: "u1", roles: /** @type {string[]} */ ([]) } } });
  assert.deepEqual(r.result, { hello: "ada", from: "u1" });
  assert.equal((await st.request("HELLO", "")).error.code, "INVALID_ARGUMENT");
  st.end();
  await st.status;
  c.close();
  child.kill("SIGTERM");
  assert.deepEqual(await exited, { code: 0, signal: null });
});

test("a caller that sends without reading its answers stalls its own stream, not the server", async (t) => {
  const { client } = await serve(t, (s) => s.handle("BIG", () => "b".repeat(64 << 10), { read: true }), { coalesce: false });
  const hog = client.open();
  hog.call.pause();
  for (let i = 0; i < 3000; i++) hog.sendRequest("BIG", String(i));
  const other = client.open();
  assert.equal((await other.request("BIG", "x")).result.length, 64 << 10);
  const mem = process.memoryUsage().rss;
  t.diagnostic(`rss with a stalled caller of 3000 requests of 64 KiB answers: ${(mem / (1 << 20)).toFixed(0)} MiB`);
  other.end();
  hog.cancel();
});

test("README shows examples/hello.js as it is", async () => {
  const { readFile } = await import("node:fs/promises");
  const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
  const hello = await readFile(new URL("../examples/hello.js", import.meta.url), "utf8");
  const shown = readme.split("```js\n")[1].split("```")[0];
  const code = hello.split("\n").filter((l) => !l.startsWith("//")).join("\n");
  assert.equal(shown, code);
});

test("many writes in flight at once raise no process warning (stderr stays JSON lines)", async (t) => {
  /** @type {Error[]} */
  const warnings = [];
  /** @param {Error} w */
  const onWarning = (w) => warnings.push(w);
  process.on("warning", onWarning);
  t.after(() => process.off("warning", onWarning));
  const release = gate();
  let running = 0;
  const { client } = await serve(t, (s) =>
    s.handle("WRITE", async () => {
      running++;
      await release.p;
      return { ok: true };
    }),
  );
  const st = client.open();
  t.after(() => st.end());
  const answers = Array.from({ length: 20 }, () => st.request("WRITE", "", {}));
  await until(() => running === 20);
  release.open();
  for (const a of await Promise.all(answers)) assert.equal(a.ok, true);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    warnings.map((w) => w.name),
    [],
  );
});
