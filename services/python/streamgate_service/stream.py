"""One open socket on the service side (docs/protocol.md §3-§5, §10-§11).

The Connect call's coroutine reads frames; each admitted request runs as a
task of its own; one sender task writes frames in the order they were
queued (answers, events, acknowledgements; a drain frame goes first).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, AsyncIterator, Callable, Coroutine, Optional

import grpc

from ._proto import pb
from .errors import Code, SocketError, draining_error
from .events import Subscriptions, check_topic
from .keys import _Entry
from .request import Principal
from .server import METADATA_INSTANCE, Admitted, Server

#: How many frames wait for the sender before whoever queues them waits too:
#: a caller that does not read its answers stops being served (handlers
#: keep their in-flight slots) instead of growing memory.
SEND_QUEUE = 64

DRAIN_FRAME = pb.ConnectResponse(drain=pb.Drain(reason="shutdown")).SerializeToString()


class Outbox:
    """The frames waiting for the sender: bounded, with room at the front
    for the drain frame, and closed when the stream ends (queueing then
    fails at once, and the sender takes what is left)."""

    def __init__(self, capacity: int) -> None:
        self._frames: collections.deque[bytes] = collections.deque()
        self._capacity = capacity
        self._closed = False
        self._room = asyncio.Event()
        self._room.set()
        self._ready = asyncio.Event()

    async def put(self, frame: bytes) -> bool:
        """Queues a frame, waiting for room; False once closed."""
        while not self._closed and len(self._frames) >= self._capacity:
            self._room.clear()
            await self._room.wait()
        if self._closed:
            return False
        self._frames.append(frame)
        self._ready.set()
        return True

    def put_first(self, frame: bytes) -> None:
        """Queues a frame to go next, without waiting."""
        if not self._closed:
            self._frames.appendleft(frame)
            self._ready.set()

    async def get(self) -> Optional[bytes]:
        """The next frame; None once closed and empty."""
        while not self._frames:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        frame = self._frames.popleft()
        self._room.set()
        return frame

    def close(self) -> None:
        self._closed = True
        self._room.set()
        self._ready.set()


class _Run:
    """A request in flight."""

    __slots__ = ("task", "read")

    def __init__(self, task: "asyncio.Task[None]", read: bool) -> None:
        self.task, self.read = task, read


class Stream:
    """One Connect call."""

    def __init__(self, server: Server, key: _Entry, context: grpc.aio.ServicerContext) -> None:
        self.server, self.key, self.context = server, key, context
        self.outbox = Outbox(SEND_QUEUE)
        self.running: dict[int, _Run] = {}  # by request id
        self.handlers: set[asyncio.Task[None]] = set()  # request tasks not yet done
        self.in_flight = 0
        self.draining = False
        self.subs: Optional[Subscriptions] = None
        self._tasks: list[asyncio.Task[None]] = []  # sender, event pump
        self._main: Optional[asyncio.Task[Any]] = None

    async def run(self, frames: AsyncIterator[bytes]) -> None:
        """Serves the stream until the caller half-closes (everything in
        flight is answered first) or the stream breaks."""
        self._main = asyncio.current_task()
        await self.context.send_initial_metadata(((METADATA_INSTANCE, self.server.instance),))
        self._spawn(self._send_loop())
        clean = False
        try:
            async for raw in frames:
                try:
                    f = pb.ConnectRequest.FromString(raw)
                except Exception:
                    # As gRPC-Go ends a stream whose frame does not decode.
                    await self.context.abort(grpc.StatusCode.INTERNAL, "a frame could not be decoded")
                await self._on_frame(f)
            # The caller half-closed: answer everything in flight, then end.
            while self.handlers:
                await asyncio.wait(list(self.handlers))
            self.outbox.close()
            await self._tasks[0]  # the sender sends what is queued
            clean = True
        finally:
            self._end(clean)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.ensure_future(coro))

    def _end(self, clean: bool) -> None:
        """Stops what belongs to the stream. Reads are cancelled; writes run
        on to their deadline (their caller cannot tell whether they ran, so
        their outcome must be recorded for a retry to find) and their
        answers go nowhere."""
        self.outbox.close()
        for r in self.running.values():
            if r.read:
                r.task.cancel()
        for t in self._tasks:  # the sender (done already when clean) and the event pump
            t.cancel()
        self.server.topics.forget(self)

    def drain(self) -> None:
        """Tells the caller to move on; request frames that still arrive
        are answered UNAVAILABLE (reason draining) without running."""
        if not self.draining:
            self.draining = True
            self.outbox.put_first(DRAIN_FRAME)

    async def _send_loop(self) -> None:
        try:
            while (frame := await self.outbox.get()) is not None:
                await self.context.write(frame)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the call is over: end the stream
            self.server.log(logging.DEBUG, "stream send failed", err=type(err).__name__)
            self.outbox.close()
            if self._main is not None:
                self._main.cancel()

    async def _reply(self, id: int, raw_form: bool, e: SocketError) -> None:
        await self.outbox.put(self.server.encode(self.server.response(id, raw_form, (None, e))))

    async def _on_frame(self, f: Any) -> None:
        kind = f.WhichOneof("frame")
        if kind == "request":
            await self._on_request(f.request)
        elif kind == "cancel":
            self._on_cancel(f.cancel.id)
        elif kind == "subscribe":
            await self._on_subscribe(f.subscribe.topic)
        elif kind == "unsubscribe":
            if self.subs is not None:
                self.subs.remove(f.unsubscribe.topic)
        else:
            await self._reply(0, False, SocketError(
                Code.INVALID_ARGUMENT, "empty frame: set request, cancel, subscribe or unsubscribe"))

    async def _on_request(self, f: Any) -> None:
        """Admits a request frame and starts its task, or answers it at once
        with the reason it cannot run."""
        id = f.id
        raw_form = f.WhichOneof("payload") == "body_raw"
        if id == 0:
            return await self._reply(id, raw_form, SocketError(Code.INVALID_ARGUMENT, "request id must not be 0"))
        if self.draining:
            return await self._reply(id, raw_form, draining_error())
        try:
            adm = self.server.admit(self.key, f)
        except SocketError as e:
            return await self._reply(id, raw_form, e)
        if self.in_flight >= self.server.max_in_flight_per_stream:
            return await self._reply(id, raw_form, SocketError(
                Code.RESOURCE_EXHAUSTED, "too many requests in flight on this stream"))
        if not self.server.acquire():
            return await self._reply(id, raw_form, SocketError(
                Code.RESOURCE_EXHAUSTED, "too many requests in flight on this server"))
        if id in self.running:
            self.server.release()
            return await self._reply(id, raw_form, SocketError(
                Code.INVALID_ARGUMENT, f"request id {id} is already in flight on this stream"))
        self.in_flight += 1
        task = asyncio.ensure_future(self._serve(id, adm))
        self.running[id] = _Run(task, adm.action.read)
        self.handlers.add(task)
        self.server.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: "asyncio.Task[None]") -> None:
        self.handlers.discard(task)
        self.server.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.server.log(logging.ERROR, "request task failed", task.exception())

    async def _serve(self, id: int, adm: Admitted) -> None:
        """Runs one request and answers it, unless a cancel frame withdrew
        it. Its in-flight slots are held until the answer is queued."""
        me = asyncio.current_task()
        try:
            outcome, replayed = await self.server.answer(adm)
            r = self.running.get(id)
            if r is None or r.task is not me:
                return  # withdrawn by a cancel frame: no answer
            del self.running[id]
            resp = self.server.response(id, adm.raw_form, outcome, replayed)
            await self.outbox.put(self.server.encode(resp))
        finally:
            r = self.running.get(id)
            if r is not None and r.task is me:
                del self.running[id]
            self.in_flight -= 1
            self.server.release()

    def _on_cancel(self, id: int) -> None:
        """Stops a request in flight; the caller expects no answer."""
        r = self.running.pop(id, None)
        if r is not None:
            r.task.cancel()

    async def _on_subscribe(self, topic: str) -> None:
        """Adds a subscription, the first starting the stream's event pump,
        and acknowledges it. A bad topic is answered with an error response
        (id 0); a key limited to some actions is refused in the
        acknowledgement (events carry whole objects, whatever action
        changed them)."""
        try:
            check_topic(topic, pattern=True)
        except SocketError as e:
            return await self._reply(0, False, e)
        ack = pb.Subscribed(topic=topic)
        if self.key.actions is not None:
            refused = SocketError(Code.PERMISSION_DENIED,
                                  f"key {self.key.name!r} is limited to some actions and may not subscribe")
            ack.error.CopyFrom(self.server.response(0, False, (None, refused)).error)
        else:
            if self.subs is None:
                self.subs = Subscriptions(self.key.delegate, Principal(self.key.subject, self.key.roles))
                self.server.topics.add(self, self.subs)
                self._spawn(self._pump(self.subs))
            self.subs.add(topic)
        await self.outbox.put(pb.ConnectResponse(subscribed=ack).SerializeToString())

    async def _pump(self, subs: Subscriptions) -> None:
        """Hands the stream's queued events to the sender."""
        while await self.outbox.put(await subs.next()):
            pass


def connect_handler(server: Server) -> Callable[[AsyncIterator[bytes], grpc.aio.ServicerContext], Coroutine[Any, Any, None]]:
    """The Connect method's handler for server."""

    async def connect(frames: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> None:
        key = await server.authenticate(context)
        st = Stream(server, key, context)
        if not server.track(st):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the service is draining")
        try:
            await st.run(frames)
        finally:
            server.untrack(st)

    return connect
