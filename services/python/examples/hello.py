"""A streamgate service in Python: one read action, served until SIGTERM."""
import asyncio, os, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout: the package beside examples/
from streamgate_service import Code, Key, Server, SocketError  # noqa: E402

server = Server(name="hello", version="1.0", keys=[Key("gateway", secret=os.environ["HELLO_KEY"], delegate=True)])


@server.action("HELLO", read=True, versions=("v1",), doc="Greets someone.")
async def hello(req, ctx):
    if not req.id:
        raise SocketError(Code.INVALID_ARGUMENT, "say who to greet")
    return {"hello": req.id, "from": ctx.meta.principal.subject}

asyncio.run(server.serve(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9000"))
