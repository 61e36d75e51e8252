"""streamgate_service: serve streamgate actions from Python.

A service registers named actions and serves them over the streamgate
socket protocol (docs/protocol.md), on grpcio's asyncio API:

    import asyncio
    from streamgate_service import Key, Server, SocketError, Code

    server = Server(name="items", version="1.0", keys=[Key("gateway", secret="s3cret", delegate=True)])

    @server.action("GET_ITEM", read=True)
    async def get_item(req, ctx):
        if req.id != "1":
            raise SocketError(Code.NOT_FOUND, f"item {req.id} not found")
        return {"id": req.id, "name": "lamp"}

    asyncio.run(server.serve("127.0.0.1:9000"))  # until SIGTERM, then drains
"""

from .errors import DETAIL_REASON, REASON_DRAINING, Code, SocketError
from .events import Visibility
from .keys import Key, hash_key
from .request import Context, Meta, Principal, Request, check_fields
from .server import Server

__all__ = [
    "Code",
    "Context",
    "DETAIL_REASON",
    "Key",
    "Meta",
    "Principal",
    "REASON_DRAINING",
    "Request",
    "Server",
    "SocketError",
    "Visibility",
    "check_fields",
    "hash_key",
]

#: The version of the socket protocol this runtime speaks.
PROTOCOL_VERSION = "1.0"
