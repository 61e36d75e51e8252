"""Coalescing, caching, deadlines and cancellation (docs/protocol.md §5, §8)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from socketclient import result, serving, until
from streamgate_service import Context, Key, Request, Server
from streamgate_service._proto import pb

KEY = "gw-secret"


class Counted:
    """A server with a read whose runs are counted and held at a gate."""

    def __init__(self, **kw: Any) -> None:
        self.server = Server(name="t", keys=[Key("gateway", secret=KEY, delegate=True),
                                             Key("plain", secret="plain", roles=())], **kw)
        self.runs = 0
        self.gate = asyncio.Event()
        self.cancelled = 0
        self.writes_done = 0

        @self.server.action("GET", read=True)
        async def get(req: Request, ctx: Context) -> Any:
            self.runs += 1
            await self.gate.wait()
            return {"id": req.id, "runs": self.runs}

        @self.server.action("PUBLIC_GET", read=True, public=True)
        async def public_get(req: Request, ctx: Context) -> Any:
            return await get(req, ctx)

        @self.server.action("CACHED", read=True, cache_ttl=60)
        async def cached(req: Request, ctx: Context) -> Any:
            self.runs += 1
            return self.runs

        @self.server.action("SLOW", read=True)
        async def slow(req: Request, ctx: Context) -> Any:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
            return "slept"

        @self.server.action("PUT")
        async def put(req: Request, ctx: Context) -> Any:
            self.runs += 1
            await self.gate.wait()
            self.writes_done += 1
            return "stored"


async def test_100_identical_concurrent_reads_share_one_handler_run() -> None:
    c = Counted()
    async with serving(c.server, KEY) as conn:
        streams = [conn.stream() for _ in range(10)]
        for s, st in enumerate(streams):
            for i in range(10):
                await st.request(i + 1, "GET", "42", {"q": 1}, read_epoch="e1")
        await until(lambda: c.server.flights.waiting() == 100, "100 reads waiting")
        c.gate.set()
        for st in streams:
            for i in range(10):
                assert result(await st.response(i + 1)) == {"id": "42", "runs": 1}
        logging.getLogger(__name__).warning("100 identical concurrent reads: %d handler run(s)", c.runs)
        print(f"100 identical concurrent reads: {c.runs} handler run(s)")
        assert c.runs == 1


async def test_reads_differing_in_key_parts_do_not_share_a_run() -> None:
    c = Counted()
    async with serving(c.server, KEY) as conn:
        st = conn.stream()
        variants: list[dict[str, Any]] = [
            dict(resource_id="1"), dict(resource_id="2"), dict(resource_id="1", body={"a": 1}),
            dict(resource_id="1", api_version="v2"), dict(resource_id="1", read_epoch="e2"),
            dict(resource_id="1", principal=pb.Principal(subject="u_1")),
        ]
        for i, v in enumerate(variants):
            body = v.pop("body", None)
            await st.request(i + 1, "GET", v.pop("resource_id"), body, **v)
        # Same body spaced and ordered differently: shares the third's run.
        await st.request(100, "GET", "1", b'{ "a" : 1 }')
        await until(lambda: c.runs == len(variants) and c.server.flights.waiting() == len(variants) + 1,
                    "every variant running")
        c.gate.set()
        for i in range(len(variants)):
            assert (await st.response(i + 1)).ok
        assert (await st.response(100)).ok
        assert c.runs == len(variants)


async def test_public_reads_are_shared_between_principals_and_private_ones_are_not() -> None:
    c = Counted()
    async with serving(c.server, KEY) as conn:
        st = conn.stream()
        for i, subject in enumerate(["u_1", "u_2"]):
            await st.request(i + 1, "PUBLIC_GET", "1", principal=pb.Principal(subject=subject))
            await st.request(i + 11, "GET", "1", principal=pb.Principal(subject=subject))
        await until(lambda: c.server.flights.waiting() == 4, "4 reads waiting")
        c.gate.set()
        for i in (1, 2, 11, 12):
            assert (await st.response(i)).ok
        assert c.runs == 3  # one public run, one per principal


async def test_writes_are_never_coalesced() -> None:
    c = Counted()
    async with serving(c.server, KEY) as conn:
        st = conn.stream()
        for i in range(5):
            await st.request(i + 1, "PUT", "1", {"v": 1})
        await until(lambda: c.runs == 5, "5 writes running")
        c.gate.set()
        for i in range(5):
            assert result(await st.response(i + 1)) == "stored"


async def test_cache_keeps_read_results_for_their_ttl_when_enabled() -> None:
    for cache_reads, want in ((True, [1, 1, 1]), (False, [1, 2, 3])):
        c = Counted(cache_reads=cache_reads)
        async with serving(c.server, KEY) as conn:
            st = conn.stream()
            got = [result(await st.call_action(i + 1, "CACHED", "1")) for i in range(3)]
            assert got == want, cache_reads


async def test_deadline_cancels_the_handler_and_answers_deadline_exceeded() -> None:
    c = Counted()
    async with serving(c.server, KEY) as conn:
        st = conn.stream()
        r = await st.call_action(1, "SLOW", timeout_ms=50)
        assert (r.error.code, r.error.message) == ("DEADLINE_EXCEEDED", "deadline exceeded")
        await until(lambda: c.cancelled == 1, "the handler cancelled")


async def test_cancel_frame_stops_the_handler_and_nothing_answers_it() -> None:
    c = Counted()
    async with serving(c.server, KEY) as conn:
        st = conn.stream()
        await st.request(1, "SLOW")
        await until(lambda: c.server.flights.waiting() == 1, "the read running")
        await st.send(cancel=pb.Cancel(id=1))
        await until(lambda: c.cancelled == 1, "the handler cancelled")
        c.gate.set()
        assert (await st.call_action(2, "GET", "x")).ok  # answers come in order of the sender's queue
        assert not [f for f in st.pending if f.response.id == 1], "a cancelled request is not answered"


async def test_a_broken_stream_cancels_its_reads_but_not_its_writes() -> None:
    c = Counted()
    async with serving(c.server, KEY) as conn:
        st = conn.stream()
        await st.request(1, "SLOW")
        await st.request(2, "PUT", "1")
        await until(lambda: c.runs == 1 and c.server.flights.waiting() == 1, "both running")
        st.call.cancel()
        await until(lambda: c.cancelled == 1, "the read cancelled")
        c.gate.set()
        await until(lambda: c.writes_done == 1, "the write completed")
        await until(lambda: c.server.in_flight == 0, "every slot freed")
