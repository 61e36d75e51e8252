// Compiled by `npm run check` only: the public API as a service uses it.
import { createServer, SocketError, Codes, hashKey, jsonLogger, idempotent, type Handler } from "../index.js";

const server = createServer({
  name: "types",
  version: "1.0.0",
  keys: [{ name: "gateway", hash: hashKey("s"), delegate: true }],
  logger: jsonLogger(),
  signals: [],
});
const get: Handler = async (req, ctx) => {
  if (ctx.signal.aborted) throw new SocketError(Codes.CANCELED, "canceled");
  return { id: req.id, subject: ctx.meta.principal.subject };
};
server.handle("GET_THING", get, { read: true, cacheTtlMs: 1000, versions: ["v1"], doc: "a thing" });
server.handle("PUT_THING", idempotent((req) => ({ put: req.body })), { idempotent: true });
const seq: number = server.publish("things/1", { a: 1 }, { public: true });
void seq;
void server.listen("127.0.0.1:0").then(() => server.shutdown());
