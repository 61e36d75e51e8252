// @streamgate/service: write streamgate services in Node.js. Types are in
// index.d.ts; the protocol is docs/protocol.md.
//
//   const server = createServer({ name: "hello", version: "1.0.0", keys: [{ name: "gateway", secret, delegate: true }] });
//   server.handle("HELLO", (req, ctx) => ({ hello: req.id }), { read: true });
//   await server.listen("127.0.0.1:9000"); // drains on SIGTERM

export { createServer, Server } from "./src/server.js";
export { SocketError, Codes, Reasons } from "./src/errors.js";
export { hashKey } from "./src/keys.js";
export { jsonLogger } from "./src/log.js";
export { idempotent } from "./src/idempotent.js";
