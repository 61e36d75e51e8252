// A whole streamgate service: node examples/hello.js, then ask the gateway
// (or any socket client) for HELLO. The key comes from the environment.
import { createServer, SocketError, Codes, jsonLogger } from "@streamgate/service";

const server = createServer({
  name: "hello",
  version: "1.0.0",
  keys: [{ name: "gateway", secret: process.env.HELLO_KEY ?? "dev-key", delegate: true }],
  logger: jsonLogger(),
});
server.handle("HELLO", (req, ctx) => {
  if (req.id === "") throw new SocketError(Codes.INVALID_ARGUMENT, "say who to greet: HELLO/{name}");
  return { hello: req.id, from: ctx.meta.principal.subject };
}, { read: true, public: false, doc: "greets {id}" });
const addr = await server.listen(process.env.HELLO_ADDR ?? "127.0.0.1:9100");
console.log(JSON.stringify({ msg: "serving", service: "hello", addr }));
