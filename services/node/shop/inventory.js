// The shop's inventory service in Node.js, a drop-in replacement for the
// Go one (services/inventory): the same actions, bodies, results, errors,
// events and PostgreSQL schema.
//
//	node services/node/shop/inventory.js -addr HOST:PORT -key KEY [-store memory|postgres://…]
//
// KEY is the stack's service key: a delegating key named "gateway" with
// the role admin. Once serving it prints one JSON line on stdout,
// {"msg":"serving","service":"inventory","addr":"HOST:PORT"}; logs go to
// stderr as JSON lines. SIGTERM (or SIGINT) drains and exits 0.

import { parseArgs } from "node:util";
import { createServer, jsonLogger } from "@streamgate/service";
import { register } from "./inventory/service.js";
import { MemoryStore } from "./inventory/memory.js";
import { PostgresStore } from "./inventory/postgres.js";

const log = jsonLogger();

/**
 * flags parses Go-style flags (-name value, -name=value, --name value).
 * @param {string[]} argv
 */
function flags(argv) {
  const args = argv.map((a) => (/^-[a-z]/.test(a) ? "-" + a : a));
  const { values } = parseArgs({
    args,
    options: { addr: { type: "string" }, key: { type: "string" }, store: { type: "string" } },
    strict: true,
    allowPositionals: false,
  });
  return {
    addr: values.addr ?? "127.0.0.1:9102",
    key: values.key ?? process.env.STREAMGATE_SERVICE_KEY ?? "",
    store: values.store ?? "memory",
  };
}

/** @param {string} store */
async function openStore(store) {
  if (store === "memory") return new MemoryStore();
  if (/^postgres(ql)?:\/\//.test(store)) return PostgresStore.open(store);
  throw new Error(`unknown -store ${JSON.stringify(store)}: want memory or a postgres:// URL`);
}

async function main() {
  let opts;
  try {
    opts = flags(process.argv.slice(2));
  } catch (e) {
    log("error", "inventory: bad flags", { err: String(/** @type {Error} */ (e).message) });
    process.exit(2);
  }
  if (opts.key === "") {
    log("error", "inventory: -key is required", {});
    process.exit(2);
  }
  const st = await openStore(opts.store);
  const server = createServer({
    name: "inventory",
    keys: [{ name: "gateway", secret: opts.key, delegate: true, roles: ["admin"] }],
    logger: log,
  });
  register(server, st, { warn: (msg, fields) => log("warn", `inventory: ${msg}`, fields) });
  const addr = await server.listen(opts.addr);
  process.stdout.write(JSON.stringify({ msg: "serving", service: "inventory", addr, store: opts.store === "memory" ? "memory" : "postgres" }) + "\n");
  await server.closed;
  await st.close();
  log("info", "inventory: stopped", {});
  process.exitCode = 0;
}

main().catch((e) => {
  // Causes (addresses, driver errors) go to the log only.
  log("error", "inventory: failed", { err: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  process.exit(1);
});
