"""Requests and their errors, frame by frame (docs/protocol.md §3, §4, §6, §11)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import pytest

from socketclient import details, result, serving, until
from streamgate_service import Code, Context, Key, Request, Server, SocketError
from streamgate_service._proto import pb

GATEWAY, LIMITED, PLAIN = "gw-secret", "limited-secret", "plain-secret"


def new_server(**kw: Any) -> Server:
    server = Server(name="t", version="1.2", keys=[
        Key("gateway", secret=GATEWAY, delegate=True),
        Key("limited", secret=LIMITED, actions=["ECHO"]),
        Key("plain", secret=PLAIN, roles=("staff",)),
    ], **kw)

    @server.action("ECHO", read=True, doc="echo")
    async def echo(req: Request, ctx: Context) -> Any:
        m = ctx.meta
        return {"id": req.id, "body": req.body, "subject": m.principal.subject, "roles": list(m.principal.roles),
                "caller": m.caller, "api_version": m.api_version, "request_id": m.request_id,
                "traceparent": m.traceparent, "idempotency_key": m.idempotency_key}

    @server.action("V2_ONLY", read=True, versions=("v2", "v3"))
    async def v2(req: Request, ctx: Context) -> Any:
        return "ok"

    @server.action("BOOM")
    async def boom(req: Request, ctx: Context) -> Any:
        raise RuntimeError("dial tcp 10.0.0.7:5432: connection refused")

    @server.action("REFUSE")
    async def refuse(req: Request, ctx: Context) -> Any:
        raise SocketError(Code.FAILED_PRECONDITION, "order already paid", {"reason": "already_paid"})

    @server.action("NOT_JSON", read=True)
    async def not_json(req: Request, ctx: Context) -> Any:
        return {"when": object()}

    @server.action("HUGE", read=True)
    async def huge(req: Request, ctx: Context) -> Any:
        return "x" * (5 << 20)

    return server


async def test_results_come_back_in_the_form_the_body_came() -> None:
    async with serving(new_server(), GATEWAY) as c:
        st = c.stream()
        r = await st.call_action(1, "ECHO", "7", {"a": [1, "b"]})
        assert r.WhichOneof("outcome") == "result_raw"
        assert result(r)["body"] == {"a": [1, "b"]}
        r = await st.call_action(2, "ECHO", "8", {"a": 1}, raw=False)
        assert r.WhichOneof("outcome") == "result"
        assert result(r)["body"] == {"a": 1}
        r = await st.call_action(3, "ECHO", "9")
        assert result(r)["body"] is None
        await st.close()


async def test_meta_reaches_the_handler_and_only_delegating_keys_name_a_principal() -> None:
    async with serving(new_server(), GATEWAY) as c:
        st = c.stream()
        r = await st.call_action(1, "ECHO", "1", api_version="v2", request_id="req-1", traceparent="00-ab-cd-01",
                                 idempotency_key="k1", principal=pb.Principal(subject="u_1", roles=["admin"]))
        got = result(r)
        assert (got["subject"], got["roles"], got["caller"]) == ("u_1", ["admin"], "gateway")
        assert (got["api_version"], got["request_id"], got["traceparent"], got["idempotency_key"]) == (
            "v2", "req-1", "00-ab-cd-01", "k1")
        plain = c.stream(PLAIN)
        r = await plain.call_action(1, "ECHO", "1")
        assert (result(r)["subject"], result(r)["roles"]) == ("plain", ["staff"])
        r = await plain.call_action(2, "ECHO", "1", principal=pb.Principal(subject="u_1"))
        assert r.error.code == "PERMISSION_DENIED"


@pytest.mark.parametrize("name,frame,code,reason", [
    ("id zero", dict(id=0, action="ECHO"), "INVALID_ARGUMENT", None),
    ("no action", dict(id=1, action=""), "INVALID_ARGUMENT", None),
    ("unknown action", dict(id=1, action="NOPE"), "NOT_FOUND", None),
    ("other version", dict(id=1, action="V2_ONLY", meta=pb.Meta(api_version="v1")), "NOT_SUPPORTED", None),
    ("no version", dict(id=1, action="V2_ONLY"), "NOT_SUPPORTED", None),
    ("body too large", dict(id=1, action="ECHO", body_raw=b'"' + b"x" * (1 << 20) + b'"'), "INVALID_ARGUMENT",
     "body_too_large"),
    ("invalid JSON body", dict(id=1, action="ECHO", body_raw=b"{nope"), "INVALID_ARGUMENT", None),
    ("value without a kind", dict(id=1, action="ECHO", body=pb.google_dot_protobuf_dot_struct__pb2.Value()),
     "INVALID_ARGUMENT", None),
    ("handler exception", dict(id=1, action="BOOM"), "INTERNAL", None),
    ("handler error", dict(id=1, action="REFUSE"), "FAILED_PRECONDITION", "already_paid"),
    ("result not JSON", dict(id=1, action="NOT_JSON"), "INTERNAL", None),
    ("answer over the frame limit", dict(id=1, action="HUGE"), "INTERNAL", None),
])
async def test_bad_requests_get_their_code_and_the_stream_carries_on(name: str, frame: dict[str, Any], code: str,
                                                                    reason: Any) -> None:
    async with serving(new_server(), GATEWAY) as c:
        st = c.stream()
        await st.send(request=pb.Request(**frame))
        r = await st.response(frame["id"])
        assert not r.ok and r.error.code == code, (name, r)
        assert details(r).get("reason") == reason
        r = await st.call_action(99, "ECHO", "after")
        assert result(r)["id"] == "after"


async def test_internal_errors_never_carry_their_cause(caplog: pytest.LogCaptureFixture) -> None:
    async with serving(new_server(), GATEWAY) as c:
        st = c.stream()
        with caplog.at_level(logging.ERROR, logger="streamgate_service"):
            r = await st.call_action(1, "BOOM")
        assert (r.error.code, r.error.message) == ("INTERNAL", "internal error")
        assert "10.0.0.7" not in str(r)
        assert any("BOOM" in rec.getMessage() and rec.exc_info for rec in caplog.records), "the cause is logged"


async def test_unknown_action_names_the_service_and_action() -> None:
    async with serving(new_server(), GATEWAY) as c:
        r = await c.stream().call_action(1, "NOPE")
        assert r.error.code == "NOT_FOUND"
        assert details(r) == {"action": "NOPE", "service": "t"}


async def test_action_limited_key_may_call_only_its_actions() -> None:
    async with serving(new_server(), LIMITED) as c:
        st = c.stream()
        assert result(await st.call_action(1, "ECHO"))["caller"] == "limited"
        r = await st.call_action(2, "V2_ONLY", api_version="v2")
        assert r.error.code == "PERMISSION_DENIED"


async def test_empty_frame_is_answered_with_id_zero() -> None:
    async with serving(new_server(), GATEWAY) as c:
        st = c.stream()
        await st.send()
        r = await st.response(0)
        assert r.error.code == "INVALID_ARGUMENT"
        assert result(await st.call_action(1, "ECHO"))["id"] == ""


@pytest.mark.parametrize("key", [None, "wrong", ""])
async def test_streams_without_a_known_key_are_refused(key: Any) -> None:
    async with serving(new_server(), GATEWAY) as c:
        st = c.stream(key if key != "" else None)
        if key == "":
            st.call = c.channel.stream_stream("/streamgate.socket.v1.SocketService/Connect")(
                metadata=(("authorization", "Basic abc"),))
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await st.call.read()
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_duplicate_id_in_flight_is_refused() -> None:
    server = new_server()
    gate = asyncio.Event()

    @server.action("WAIT", read=True)
    async def wait(req: Request, ctx: Context) -> Any:
        await gate.wait()
        return req.id

    async with serving(server, GATEWAY) as c:
        st = c.stream()
        await st.request(5, "WAIT", "a")
        await st.request(5, "WAIT", "b")
        r = await st.response(5)
        assert r.error.code == "INVALID_ARGUMENT" and "already in flight" in r.error.message
        gate.set()
        assert result(await st.response(5)) == "a"


async def test_in_flight_per_stream_is_bounded() -> None:
    server = new_server(max_in_flight_per_stream=3)
    gate = asyncio.Event()

    @server.action("WAIT", read=True)
    async def wait(req: Request, ctx: Context) -> Any:
        await gate.wait()
        return req.id

    async with serving(server, GATEWAY) as c:
        st = c.stream()
        for i in range(1, 4):
            await st.request(i, "WAIT", str(i))  # distinct ids: not coalesced
        await st.request(4, "WAIT", "4")
        r = await st.response(4)
        assert r.error.code == "RESOURCE_EXHAUSTED"
        other = c.stream()  # the bound is per stream
        await other.request(1, "WAIT", "x")
        gate.set()
        assert result(await other.response(1)) == "x"
        assert [result(await st.response(i)) for i in range(1, 4)] == ["1", "2", "3"]


async def test_a_garbage_frame_ends_its_stream_only() -> None:
    async with serving(new_server(), GATEWAY) as c:
        call = c.channel.stream_stream("/streamgate.socket.v1.SocketService/Connect")(
            metadata=(("authorization", f"Bearer {GATEWAY}"),))
        await call.write(b"\xff\xff\xff\xff")
        with pytest.raises(grpc.aio.AioRpcError) as e:
            while True:
                await call.read()
        assert e.value.code() == grpc.StatusCode.INTERNAL
        assert result(await c.stream().call_action(1, "ECHO", "still"))["id"] == "still"


async def test_a_frame_over_the_limit_ends_its_stream_only() -> None:
    async with serving(new_server(), GATEWAY) as c:
        st = c.stream()
        await st.request(1, "ECHO", body=b'"' + b"x" * (5 << 20) + b'"')
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await st.response(1)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert result(await c.stream().call_action(1, "ECHO", "still"))["id"] == "still"


async def test_describe_lists_the_actions_a_key_may_call() -> None:
    async with serving(new_server(), GATEWAY) as c:
        await c.stream().call_action(1, "ECHO")
        describe = c.channel.unary_unary("/streamgate.socket.v1.SocketService/Describe",
                                         request_serializer=pb.DescribeRequest.SerializeToString,
                                         response_deserializer=pb.DescribeResponse.FromString)
        d = await describe(pb.DescribeRequest(), metadata=(("authorization", f"Bearer {GATEWAY}"),))
        assert (d.service, d.version) == ("t", "1.2") and d.instance.startswith("t-")
        assert [a.name for a in d.actions] == ["BOOM", "ECHO", "HUGE", "NOT_JSON", "REFUSE", "V2_ONLY"]
        echo = d.actions[1]
        assert (echo.kind, echo.idempotent, echo.doc, echo.stats.count) == (pb.ACTION_KIND_READ, True, "echo", 1)
        assert d.actions[0].kind == pb.ACTION_KIND_WRITE and list(d.actions[5].versions) == ["v2", "v3"]
        d = await describe(pb.DescribeRequest(), metadata=(("authorization", f"Bearer {LIMITED}"),))
        assert [a.name for a in d.actions] == ["ECHO"]
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await describe(pb.DescribeRequest())
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_unary_call_runs_one_request() -> None:
    async with serving(new_server(), GATEWAY) as c:
        call = c.channel.unary_unary("/streamgate.socket.v1.SocketService/Call",
                                     request_serializer=pb.CallRequest.SerializeToString,
                                     response_deserializer=pb.CallResponse.FromString)
        md = (("authorization", f"Bearer {GATEWAY}"),)
        r = await call(pb.CallRequest(request=pb.Request(action="ECHO", resource_id="3", body_raw=b"{}")), metadata=md)
        assert result(r.response)["id"] == "3"
        r = await call(pb.CallRequest(request=pb.Request(action="NOPE")), metadata=md)
        assert r.response.error.code == "NOT_FOUND"


def test_registration_is_checked() -> None:
    server = new_server()
    with pytest.raises(ValueError):
        server.handle("lower", lambda r, c: None)
    with pytest.raises(ValueError):
        server.handle("ECHO", lambda r, c: None)
    with pytest.raises(ValueError):
        server.handle("WRITE_CACHED", lambda r, c: None, cache_ttl=5)
    with pytest.raises(ValueError):
        Server(name="x", keys=[])
    with pytest.raises(ValueError):
        Server(name="x", keys=[Key("a", secret="s", hash="sha256:" + "0" * 64)])
    assert SocketError("NOPE", "m").code == Code.INTERNAL


async def test_object_decodes_bodies_strictly() -> None:
    server = new_server()

    @server.action("TAKES_NAME")
    async def takes_name(req: Request, ctx: Context) -> Any:
        return req.object("name")

    async with serving(server, GATEWAY) as c:
        st = c.stream()
        assert result(await st.call_action(1, "TAKES_NAME", body={"name": "a"})) == {"name": "a"}
        assert result(await st.call_action(2, "TAKES_NAME")) == {}
        r = await st.call_action(3, "TAKES_NAME", body={"name": "a", "bogus": 1})
        assert (r.error.code, details(r)) == ("INVALID_ARGUMENT", {"field": "bogus", "reason": "unknown_field"})
        r = await st.call_action(4, "TAKES_NAME", body=[1])
        assert r.error.code == "INVALID_ARGUMENT"
