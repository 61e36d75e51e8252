"""Events: subscriptions, seq per topic, visibility and gap markers
(docs/protocol.md §3.4, §3.5, §10)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from socketclient import serving, until
from streamgate_service import Key, Server, SocketError, Visibility
from streamgate_service.events import EVENT_QUEUE

GW, USER, LIMITED = "gw", "user-key", "limited"


def new_server() -> Server:
    server = Server(name="t", keys=[Key("gateway", secret=GW, delegate=True),
                                    Key("u_1", secret=USER, roles=("staff",)),
                                    Key("limited", secret=LIMITED, actions=["X"])])
    server.handle("X", lambda req, ctx: None)
    return server


async def subscribe(st: Any, topic: str) -> Any:
    await st.send(subscribe={"topic": topic})
    f = await st.next()
    assert f.WhichOneof("frame") == "subscribed", f
    return f.subscribed


async def test_events_carry_seq_per_topic_and_reach_patterns() -> None:
    server = new_server()
    async with serving(server, GW) as c:
        st = c.stream()
        assert (await subscribe(st, "orders/*")).topic == "orders/*"
        await subscribe(st, "users/1")
        server.publish("orders/1", {"n": 1}, {"public": True})
        server.publish("orders/2", {"n": 2})
        server.publish("orders/1", {"n": 3})
        server.publish("users/1", "u")
        server.publish("users/2", "not subscribed")
        got = [(await st.next()).event for _ in range(4)]
        assert [(e.topic, e.seq, json.loads(e.data)) for e in got] == [
            ("orders/1", 1, {"n": 1}), ("orders/2", 1, {"n": 2}), ("orders/1", 2, {"n": 3}), ("users/1", 1, "u")]
        assert got[0].visibility.public and not got[1].visibility.public
        await st.send(unsubscribe={"topic": "orders/*"})
        await st.call_action(1, "X")  # the unsubscribe is in place once this is answered
        server.publish("orders/1", 4)
        server.publish("users/1", 5)
        e = (await st.next()).event
        assert (e.topic, e.seq) == ("users/1", 2)


async def test_non_delegating_keys_see_only_what_their_principal_may() -> None:
    server = new_server()
    async with serving(server, GW) as c:
        st = c.stream(USER)
        await subscribe(st, "*")
        server.publish("a", 1, Visibility(subjects=["u_2"]))
        server.publish("a", 2, Visibility(subjects=["u_1"]))
        server.publish("a", 3, Visibility(roles=["admin"]))
        server.publish("a", 4, {"roles": ["staff"]})
        server.publish("a", 5, None)
        server.publish("a", 6, {"public": True})
        got = [json.loads((await st.next()).event.data) for _ in range(3)]
        assert got == [2, 4, 6]


async def test_bad_topics_and_limited_keys_are_refused() -> None:
    server = new_server()
    async with serving(server, GW) as c:
        st = c.stream()
        for topic in ["", "a//b", "a/*/b", "a b", "x" * 300]:
            await st.send(subscribe={"topic": topic})
            f = await st.next()
            assert f.response.id == 0 and f.response.error.code == "INVALID_ARGUMENT", topic
        lim = c.stream(LIMITED)
        ack = await subscribe(lim, "a")
        assert ack.error.code == "PERMISSION_DENIED"
    with pytest.raises(SocketError):
        server.publish("a/*", 1)
    with pytest.raises(SocketError):
        server.publish("a", object())


async def test_a_stream_that_falls_behind_gets_a_gap_marker() -> None:
    server = new_server()
    async with serving(server, GW) as c:
        st = c.stream()
        await subscribe(st, "t")
        n = EVENT_QUEUE * 4  # published at once: the queue holds EVENT_QUEUE of them
        for i in range(n):
            server.publish("t", i + 1)
        frames = [(await st.next()).event for _ in range(EVENT_QUEUE + 1)]
        gaps = [e for e in frames if e.gap]
        assert len(gaps) == 1 and not gaps[0].topic and not gaps[0].data and not gaps[0].seq
        assert [e.seq for e in frames if not e.gap] == list(range(1, EVENT_QUEUE + 1))
        server.publish("t", "after")
        e = (await st.next()).event
        assert (e.gap, e.seq) == (False, n + 1)  # the jump shows the loss too
