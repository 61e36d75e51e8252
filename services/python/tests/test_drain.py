"""Graceful drain, health, and the example (docs/protocol.md §9, §11)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest

from socketclient import result, serving, until
from streamgate_service import Context, Key, Request, Server
from streamgate_service._proto import pb
from streamgate_service.health import NOT_SERVING, SERVING, SERVICE_UNKNOWN, HealthCheckRequest, HealthCheckResponse

KEY = "gw"
HERE = Path(__file__).resolve().parent


def health(channel: grpc.aio.Channel) -> Any:
    return channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=HealthCheckRequest.SerializeToString,
                               response_deserializer=HealthCheckResponse.FromString)


async def test_drain_answers_in_flight_refuses_new_frames_and_streams_then_stops() -> None:
    server = Server(name="t", keys=[Key("gateway", secret=KEY, delegate=True)], drain_timeout=5)
    gate = asyncio.Event()
    ran: list[str] = []

    @server.action("PUT")
    async def put(req: Request, ctx: Context) -> Any:
        ran.append(req.id)
        await gate.wait()
        return "stored"

    async with serving(server, KEY) as c:
        check = health(c.channel)
        assert (await check(HealthCheckRequest(service=""))).status == SERVING
        assert (await check(HealthCheckRequest(service="t"))).status == SERVING
        st = c.stream()
        await st.request(1, "PUT", "in-flight")
        await until(lambda: ran == ["in-flight"], "the write running")
        drained = asyncio.ensure_future(server.shutdown())
        f = await st.next()
        assert f.WhichOneof("frame") == "drain" and f.drain.reason == "shutdown"
        r = await st.call_action(2, "PUT", "late")
        assert (r.error.code, r.error.message) == ("UNAVAILABLE", "the stream is draining: send the request on another stream")
        assert dict(r.error.details.fields)["reason"].string_value == "draining"
        assert ran == ["in-flight"], "a refused frame does not run"
        assert (await check(HealthCheckRequest(service="t"))).status == NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await c.stream().call.read()
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert not drained.done()
        gate.set()
        assert result(await st.response(1)) == "stored"
        await st.close()
        with pytest.raises(EOFError):
            await st.next()
        await asyncio.wait_for(drained, 5)


async def test_health_watch_follows_the_status() -> None:
    server = Server(name="t", keys=[Key("gateway", secret=KEY)])
    async with serving(server, KEY) as c:
        watch = c.channel.unary_stream("/grpc.health.v1.Health/Watch", request_serializer=HealthCheckRequest.SerializeToString,
                                       response_deserializer=HealthCheckResponse.FromString)
        w = watch(HealthCheckRequest(service=""))
        assert (await w.read()).status == SERVING
        unknown = watch(HealthCheckRequest(service="nope"))
        assert (await unknown.read()).status == SERVICE_UNKNOWN
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await health(c.channel)(HealthCheckRequest(service="nope"))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        server.begin_shutdown()
        assert (await w.read()).status == NOT_SERVING
        w.cancel()
        unknown.cancel()
        await server.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_hello_example_serves_and_drains_on_sigterm() -> None:
    port = free_port()
    env = dict(os.environ, HELLO_KEY="hello-key")
    proc = await asyncio.create_subprocess_exec(sys.executable, str(HERE.parent / "examples" / "hello.py"),
                                                f"127.0.0.1:{port}", env=env, stderr=subprocess.PIPE)
    try:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        await channel.channel_ready()  # waits for the listener, bounded by the test's timeout
        connect = channel.stream_stream("/streamgate.socket.v1.SocketService/Connect",
                                        request_serializer=pb.ConnectRequest.SerializeToString,
                                        response_deserializer=pb.ConnectResponse.FromString)
        call = connect(metadata=(("authorization", "Bearer hello-key"),))
        await call.write(pb.ConnectRequest(request=pb.Request(id=1, action="HELLO", resource_id="ada",
                                                              meta=pb.Meta(api_version="v1", principal=pb.Principal(subject="u_1")))))
        r = (await call.read()).response
        assert result(r) == {"hello": "ada", "from": "u_1"}
        proc.send_signal(signal.SIGTERM)
        f = await call.read()
        assert f.WhichOneof("frame") == "drain"
        await call.done_writing()
        assert await call.read() is grpc.aio.EOF
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        await channel.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_readme_shows_the_example() -> None:
    readme = (HERE.parent / "README.md").read_text()
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert block == (HERE.parent / "examples" / "hello.py").read_text()
