// Abort (src/abort.js): an AbortController whose signal is made on demand
// behaves as one made up front.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Abort } from "../src/abort.js";

test("a signal made before the abort aborts with it; one made after is already aborted", () => {
  const before = new Abort();
  const s = before.signal;
  let heard = 0;
  s.addEventListener("abort", () => heard++);
  const reason = new Error("gone");
  before.abort(reason);
  before.abort(new Error("again"));
  assert.equal(s.aborted, true);
  assert.equal(s.reason, reason);
  assert.equal(heard, 1);
  assert.equal(before.signal, s);

  const after = new Abort();
  after.abort(reason);
  assert.equal(after.aborted, true);
  assert.equal(after.signal.aborted, true);
  assert.equal(after.signal.reason, reason);
});

test("onAbort listeners run once, unless removed or registered after the abort", () => {
  const a = new Abort();
  /** @type {string[]} */
  const calls = [];
  a.onAbort(() => calls.push("first"));
  const off = a.onAbort(() => calls.push("removed"));
  a.onAbort(() => calls.push("second"));
  off();
  a.abort("why");
  a.abort("again");
  a.onAbort(() => calls.push("late"));
  assert.deepEqual(calls, ["first", "second"]);
  assert.equal(a.reason, "why");
});
