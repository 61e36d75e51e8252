"""A caller of the socket protocol for the tests: real grpc.aio channels
over loopback, frame by frame (no client library in between)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, AsyncIterator, Optional

import grpc

from streamgate_service import Server
from streamgate_service._proto import pb

CONNECT = "/streamgate.socket.v1.SocketService/Connect"
DESCRIBE = "/streamgate.socket.v1.SocketService/Describe"
WAIT = 10.0  # bounds every wait for a frame


class Stream:
    """One Connect call: write frames, read them back."""

    def __init__(self, channel: grpc.aio.Channel, key: Optional[str]) -> None:
        md = (("authorization", f"Bearer {key}"),) if key is not None else ()
        self.call = channel.stream_stream(CONNECT, request_serializer=pb.ConnectRequest.SerializeToString,
                                          response_deserializer=pb.ConnectResponse.FromString)(metadata=md)
        self.pending: list[Any] = []  # frames read while waiting for another

    async def send(self, **frame: Any) -> None:
        await self.call.write(pb.ConnectRequest(**frame))

    async def request(self, id: int, action: str, resource_id: str = "", body: Any = None, *,
                      raw: bool = True, timeout_ms: int = 0, **meta: Any) -> None:
        r = pb.Request(id=id, action=action, resource_id=resource_id, timeout_ms=timeout_ms, meta=pb.Meta(**meta))
        if body is not None:
            if raw:
                r.body_raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            else:
                from google.protobuf import json_format
                json_format.ParseDict(body, r.body)
        await self.send(request=r)

    async def next(self, timeout: float = WAIT) -> Any:
        if self.pending:
            return self.pending.pop(0)
        f = await asyncio.wait_for(self.call.read(), timeout)
        if f is grpc.aio.EOF:
            raise EOFError("the stream ended")
        return f

    async def response(self, id: int, timeout: float = WAIT) -> Any:
        """The response to request id (other frames are kept for next())."""
        for i, f in enumerate(self.pending):
            if f.WhichOneof("frame") == "response" and f.response.id == id:
                return self.pending.pop(i).response
        while True:
            f = await asyncio.wait_for(self.call.read(), timeout)
            if f is grpc.aio.EOF:
                raise EOFError("the stream ended")
            if f.WhichOneof("frame") == "response" and f.response.id == id:
                return f.response
            self.pending.append(f)

    async def call_action(self, id: int, action: str, resource_id: str = "", body: Any = None, **kw: Any) -> Any:
        await self.request(id, action, resource_id, body, **kw)
        return await self.response(id)

    async def close(self) -> None:
        await self.call.done_writing()


def result(resp: Any) -> Any:
    """The JSON result of an ok response."""
    assert resp.ok, f"{resp.error.code}: {resp.error.message}"
    if resp.WhichOneof("outcome") == "result_raw":
        return json.loads(resp.result_raw)
    from google.protobuf import json_format
    return json_format.MessageToDict(resp.result)


class Conn:
    """A channel to a served Server."""

    def __init__(self, server: Server, port: int, key: Optional[str]) -> None:
        self.server, self.port, self.key = server, port, key
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")

    def stream(self, key: Optional[str] = "") -> Stream:
        return Stream(self.channel, self.key if key == "" else key)


@contextlib.asynccontextmanager
async def serving(server: Server, key: Optional[str]) -> AsyncIterator[Conn]:
    """Serves server on a loopback port for the block; stops it after."""
    port = await server.start("127.0.0.1:0")
    conn = Conn(server, port, key)
    try:
        yield conn
    finally:
        await conn.channel.close()
        await server.stop()


async def until(cond: Any, what: str, timeout: float = WAIT) -> None:
    """Polls cond() until it holds (there is no signal to wait on), or
    fails after timeout."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def details(resp: Any) -> dict[str, Any]:
    from google.protobuf import json_format
    return json_format.MessageToDict(resp.error.details)
