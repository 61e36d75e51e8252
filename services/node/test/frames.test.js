// The hand codec of the hot frames (src/frames.js) against
// @bufbuild/protobuf's reflective one, on random frames: the same messages
// decoded, the same bytes encoded, and every frame the hand codec gives up
// on decodes reflectively.

import { test } from "node:test";
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ConnectRequestSchema, ConnectResponseSchema } from "../../../gen/es/streamgate/socket/v1/socket_pb.js";
import { decodeConnectRequest, encodeRawAnswer } from "../src/frames.js";

/**
 * rand is a small seeded PRNG (mulberry32), so that a failure can be replayed.
 * @param {number} seed
 */
function rand(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = 20261207;
const N = 3000;

/** @param {() => number} r */
function gen(r) {
  const int = (/** @type {number} */ n) => Math.floor(r() * n);
  /** @type {<T>(xs: T[]) => T} */
  const pick = (xs) => xs[int(xs.length)];
  const str = () => {
    const alphabet = ["a", "Z", "0", "_", "-", " ", "é", "日本", "😀", "\u0000", "\ufeff", "/"];
    let s = "";
    const n = pick([0, 0, 1, 3, 10, 70, 200]);
    for (let i = 0; i < n; i++) s += pick(alphabet);
    return s;
  };
  const bytes = () => {
    const b = new Uint8Array(pick([0, 1, 5, 130, 300]));
    for (let i = 0; i < b.length; i++) b[i] = int(256);
    return b;
  };
  const id = () =>
    pick([0n, 1n, 127n, 128n, 300n, 2n ** 32n, 2n ** 49n - 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n, BigInt(int(1e9))]);
  return { int, pick, str, bytes, id };
}

/**
 * @param {() => number} r
 * @returns {any} a ConnectRequest init
 */
function randomRequestFrame(r) {
  const { int, pick, str, bytes, id } = gen(r);
  if (r() < 0.2) {
    return { frame: { case: "cancel", value: { id: id() } } };
  }
  /** @type {any} */
  const req = { id: id(), action: pick(["", "GET_USER", str()]), resourceId: pick(["", "42", str()]) };
  const p = r();
  if (p < 0.6) req.payload = { case: "bodyRaw", value: bytes() };
  else if (p < 0.7) req.payload = { case: "body", value: { kind: { case: "stringValue", value: str() } } };
  if (r() < 0.7) {
    req.meta = {
      apiVersion: pick(["", "v1", str()]),
      traceparent: pick(["", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]),
      tracestate: pick(["", str()]),
      idempotencyKey: pick(["", str()]),
      requestId: pick(["", str()]),
      readEpoch: pick(["", "3"]),
    };
    if (r() < 0.6) req.meta.principal = { subject: pick(["", str()]), roles: Array.from({ length: int(4) }, str) };
  }
  req.timeoutMs = pick([0, 1, 5000, 2 ** 31, 2 ** 32 - 1]);
  return { frame: { case: "request", value: req } };
}

test("request and cancel frames decode by hand as fromBinary decodes them", () => {
  const r = rand(SEED);
  let byHand = 0;
  for (let i = 0; i < N; i++) {
    const bytes = Buffer.from(toBinary(ConnectRequestSchema, create(ConnectRequestSchema, randomRequestFrame(r))));
    const want = fromBinary(ConnectRequestSchema, bytes);
    const got = decodeConnectRequest(bytes);
    if (got !== null) {
      byHand++;
      assert.deepStrictEqual(got, want, `frame ${i}: ${bytes.toString("hex")}`);
    }
  }
  // Only bodies as a Value and ids of 2^53 and more are left to the reflective codec.
  assert.ok(byHand > N * 0.7, `${byHand} of ${N} frames decoded by hand`);
});

test("damaged frames: the hand decoder gives up or agrees with fromBinary", () => {
  const r = rand(SEED + 1);
  const { int } = gen(r);
  for (let i = 0; i < N; i++) {
    const bytes = Buffer.from(toBinary(ConnectRequestSchema, create(ConnectRequestSchema, randomRequestFrame(r))));
    const damaged = Buffer.from(bytes);
    const how = int(4);
    let b = damaged;
    if (how === 0 && damaged.length > 0) {
      damaged[int(damaged.length)] = int(256); // a byte changed
    } else if (how === 1) {
      b = damaged.subarray(0, int(damaged.length + 1)); // cut short
    } else if (how === 2) {
      b = Buffer.concat([damaged, damaged.subarray(0, int(damaged.length + 1))]); // a field again, or part of one
    } else {
      b = Buffer.concat([damaged, Buffer.from([0x5a, 0x01, 0x00])]); // an unknown field
    }
    /** @type {any} */
    let want;
    try {
      want = fromBinary(ConnectRequestSchema, b);
    } catch (e) {
      want = e;
    }
    const got = decodeConnectRequest(b);
    if (want instanceof Error) {
      assert.equal(got, null, `frame ${i} (${b.toString("hex")}) fails reflectively (${want.message}) but decoded by hand`);
    } else if (got !== null) {
      assert.deepStrictEqual(got, want, `frame ${i}: ${b.toString("hex")}`);
    }
  }
});

test("invalid UTF-8 in a string is left to the reflective codec, which refuses it", () => {
  // Request{id: 1, action: "\xff"}
  const b = Buffer.from([0x0a, 0x05, 0x08, 0x01, 0x12, 0x01, 0xff]);
  assert.throws(() => fromBinary(ConnectRequestSchema, b));
  assert.equal(decodeConnectRequest(b), null);
});

test("answers in result_raw encode by hand as toBinary encodes them", () => {
  const r = rand(SEED + 2);
  const { pick, str, id } = gen(r);
  for (let i = 0; i < N; i++) {
    const answerId = id();
    const json = pick(["null", '{"id":"1"}', JSON.stringify({ s: str() }), str(), "x".repeat(pick([0, 127, 128, 20000]))]);
    const replayed = r() < 0.3;
    const want = Buffer.from(
      toBinary(
        ConnectResponseSchema,
        create(ConnectResponseSchema, {
          frame: { case: "response", value: { id: answerId, ok: true, outcome: { case: "resultRaw", value: Buffer.from(json, "utf8") }, replayed } },
        }),
      ),
    );
    assert.deepStrictEqual(encodeRawAnswer(answerId, json, replayed, 1 << 20), want, `answer ${i}`);
    assert.deepStrictEqual(encodeRawAnswer(answerId, json, replayed, want.length), want, `answer ${i} at its limit`);
    assert.equal(encodeRawAnswer(answerId, json, replayed, want.length - 1), null, `answer ${i} over its limit`);
  }
});
