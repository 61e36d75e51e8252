// The Node peers of `streamgate bench compare`: the same users handler
// (GET one user of 1..N, the bench's users) served two ways:
//
//   node nodeusers.js socket -users=N   a streamgate service (@streamgate/service),
//                                       GET_USER, coalescing off, key STREAMGATE_SERVICE_KEY
//   node nodeusers.js http -users=N     node:http, GET /v1/users/{id} as plain JSON
//
// Each prints "ready ADDR" once it listens on a free loopback port; SIGTERM stops it.
import http from "node:http";
import { createServer, SocketError, Codes } from "../../../../services/node/index.js";

const [mode, ...rest] = process.argv.slice(2);
// -users N or -users=N, as Go's flag package takes it.
const at = rest.findIndex((a) => a === "-users" || a.startsWith("-users="));
const n = at < 0 ? 1000 : Number(rest[at].includes("=") ? rest[at].slice(7) : rest[at + 1]);
if (!Number.isInteger(n) || n < 1 || (mode !== "socket" && mode !== "http")) {
  console.error("usage: node nodeusers.js socket|http [-users N]");
  process.exit(2);
}

// user i is what bench.Users(n) says: created a minute after 2025-01-01 per i.
const epoch = Date.UTC(2025, 0, 1);
/** @param {string} id */
function lookup(id) {
  const i = Number(id);
  if (!Number.isInteger(i) || i < 1 || i > n || String(i) !== id) return undefined;
  const createdAt = new Date(epoch + i * 60_000).toISOString().replace(".000Z", "Z");
  return { id, name: `User ${i}`, email: `user${i}@example.com`, status: "active", created_at: createdAt };
}

if (mode === "socket") {
  const secret = process.env.STREAMGATE_SERVICE_KEY;
  if (!secret) {
    console.error("nodeusers: STREAMGATE_SERVICE_KEY is unset");
    process.exit(2);
  }
  const server = createServer({
    name: "users", version: "bench", coalesce: false,
    keys: [{ name: "gateway", secret, delegate: true, roles: ["admin"] }],
  });
  server.handle("GET_USER", (req) => {
    const u = lookup(req.id);
    if (!u) throw new SocketError(Codes.NOT_FOUND, "user not found");
    return u;
  }, { read: true });
  console.log(`ready ${await server.listen("127.0.0.1:0")}`);
} else {
  const srv = http.createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
    const m = req.method === "GET" ? /^\/v1\/users\/([^/?]+)$/.exec(req.url ?? "") : null;
    const u = m ? lookup(m[1]) : undefined;
    const body = JSON.stringify(u ?? { error: m ? "user not found" : "not found" });
    res.writeHead(u ? 200 : 404, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
    res.end(body);
  });
  srv.listen(0, "127.0.0.1", () => {
    const a = /** @type {import("node:net").AddressInfo} */ (srv.address());
    console.log(`ready ${a.address}:${a.port}`);
  });
  process.on("SIGTERM", () => srv.close(() => process.exit(0)));
}
