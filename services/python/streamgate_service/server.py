"""The service side of the streamgate socket protocol on grpc.aio.

    server = Server(name="items", version="1.0", keys=[Key("gateway", secret=s, delegate=True)])

    @server.action("GET_ITEM", read=True)
    async def get_item(req, ctx):
        return {"id": req.id}

    await server.serve("127.0.0.1:9000")  # until SIGTERM or shutdown(), then drains
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import re
import signal
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Optional, Sequence, TypeVar, Union

import grpc
from google.protobuf import json_format

from . import health
from ._proto import pb
from .coalesce import Flights, TTLCache, flight_key
from .errors import DETAIL_REASON, REASON_BODY_TOO_LARGE, Code, SocketError, without_draining_reason
from .events import Topics, Visibility, check_topic
from .keys import Key, Keyring, _Entry
from .request import Context, Meta, Principal, Request
from .stats import ActionStats, duration

#: What a handler is: ``async def handler(req, ctx)`` returning a
#: JSON-serialisable result (a plain function works too).
Handler = Callable[[Request, Context], Union[Awaitable[Any], Any]]
H = TypeVar("H", bound=Handler)

#: An outcome: the result as JSON bytes, or the error.
Outcome = tuple[Optional[bytes], Optional[SocketError]]

SOCKET_SERVICE = "streamgate.socket.v1.SocketService"
METADATA_AUTHORIZATION = "authorization"
METADATA_INSTANCE = "streamgate-instance"

_ACTION_NAME = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")

DEFAULT_STREAM_IN_FLIGHT = 1024
DEFAULT_SERVER_IN_FLIGHT = 16384
DEFAULT_MAX_BODY = 1 << 20
DEFAULT_MAX_FRAME = 4 << 20
DEFAULT_DRAIN_TIMEOUT = 10.0


@dataclass
class _Action:
    name: str
    handler: Handler
    read: bool
    idempotent: bool
    public: bool
    cache_ttl: float
    versions: tuple[str, ...]
    timeout: Optional[float]
    doc: str
    stats: ActionStats


@dataclass
class Admitted:
    """A request frame that passed admission: what its run needs."""

    action: _Action
    req: Request
    meta: Meta
    raw_form: bool  # the body came as body_raw: the result goes back as result_raw
    timeout_ms: int


def _from_value(v: Any) -> Any:
    """A google.protobuf.Value as a Python value; a Value without a kind
    (at any depth) is a ValueError, as protojson has it."""
    kind = v.WhichOneof("kind")
    if kind == "struct_value":
        return {k: _from_value(x) for k, x in v.struct_value.fields.items()}
    if kind == "list_value":
        return [_from_value(x) for x in v.list_value.values]
    if kind is None:
        raise ValueError("a value without a kind")
    if kind == "null_value":
        return None
    if kind == "number_value" and v.number_value.is_integer() and abs(v.number_value) < 2**53:
        return int(v.number_value)  # 1, not 1.0, as protojson writes it
    return getattr(v, kind)


class _Log:
    """Structured log lines: the fields go in the message (key=value) and
    in the record's extra, for handlers that format them."""

    def __init__(self, logger: logging.Logger, service: str) -> None:
        self.logger, self.service = logger, service

    def __call__(self, level: int, msg: str, exc: Optional[BaseException] = None, **fields: Any) -> None:
        if not self.logger.isEnabledFor(level):
            return
        fields = {"service": self.service, **fields}
        text = msg + " " + " ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in fields.items())
        self.logger.log(level, text, exc_info=exc, extra={"streamgate": fields})


class Server:
    """Serves registered actions over the socket protocol, with the gRPC
    health service beside it. Register actions, then serve() (or start()).

    Limits (the Go runtime's): a body over max_body bytes is
    INVALID_ARGUMENT reason body_too_large; past max_in_flight_per_stream
    (or max_in_flight on the server) running requests, a frame is
    RESOURCE_EXHAUSTED; a frame over max_frame bytes ends its stream
    (gRPC's RESOURCE_EXHAUSTED). drain_timeout bounds a graceful shutdown
    and is the deadline of a write sent without one. Identical concurrent
    reads share one handler run unless coalesce=False; cache_reads=True
    also keeps the results of actions declared with cache_ttl, for that
    long.
    """

    def __init__(
        self,
        name: str,
        version: str = "",
        keys: Iterable[Key] = (),
        *,
        logger: Optional[logging.Logger] = None,
        max_in_flight_per_stream: int = DEFAULT_STREAM_IN_FLIGHT,
        max_in_flight: int = DEFAULT_SERVER_IN_FLIGHT,
        max_body: int = DEFAULT_MAX_BODY,
        max_frame: int = DEFAULT_MAX_FRAME,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        coalesce: bool = True,
        cache_reads: bool = False,
    ) -> None:
        if not name:
            raise ValueError("Server: name is required")
        self.keyring = Keyring(keys)
        if len(self.keyring) == 0:
            raise ValueError("Server: no keys: a server accepts only the keys it is given")
        if max_in_flight_per_stream < 1 or max_in_flight < 1:
            raise ValueError("Server: in-flight bounds must be positive")
        if max_body < 0 or max_frame < 1 or drain_timeout <= 0:
            raise ValueError("Server: size limits and the drain timeout must be positive")
        self.name, self.version = name, version
        self.instance = name + "-" + os.urandom(6).hex()
        self.max_in_flight_per_stream, self.max_in_flight = max_in_flight_per_stream, max_in_flight
        self.max_body, self.max_frame, self.drain_timeout = max_body, max_frame, drain_timeout
        self.log = _Log(logger or logging.getLogger("streamgate_service"), name)
        self._coalesce = coalesce
        self._cache: Optional[TTLCache[bytes]] = TTLCache() if cache_reads else None
        self.flights: Flights[Outcome] = Flights()
        self.topics = Topics()
        self.health = health.Health()
        self._actions: dict[str, _Action] = {}
        self._grpc: Optional[grpc.aio.Server] = None
        self.streams: set[Any] = set()  # the open _Streams
        self.tasks: set[asyncio.Task[Any]] = set()  # requests running, on every stream
        self.in_flight = 0
        self.draining = False
        self._idle: Optional[asyncio.Event] = None  # set when draining and the last stream ended
        self._stopping: Optional[asyncio.Task[None]] = None
        self._stopped: Optional[asyncio.Event] = None

    # Registration.

    def action(
        self,
        name: str,
        *,
        read: bool = False,
        idempotent: bool = False,
        public: bool = False,
        cache_ttl: Optional[float] = None,
        versions: Sequence[str] = (),
        timeout: Optional[float] = None,
        doc: str = "",
    ) -> Callable[[H], H]:
        """Registers the decorated handler as an action named in
        UPPER_SNAKE_CASE. Actions are writes unless read=True (reads are
        idempotent, coalesced and cacheable). public: a read's answer is
        the same for every caller. cache_ttl: seconds a read's result may be
        cached. versions: the API versions that have it (default all).
        timeout: seconds the handler may run at most. doc: for Describe."""

        def register(fn: H) -> H:
            self.handle(name, fn, read=read, idempotent=idempotent, public=public, cache_ttl=cache_ttl,
                        versions=versions, timeout=timeout, doc=doc)
            return fn

        return register

    def handle(self, name: str, handler: Handler, *, read: bool = False, idempotent: bool = False,
               public: bool = False, cache_ttl: Optional[float] = None, versions: Sequence[str] = (),
               timeout: Optional[float] = None, doc: str = "") -> None:
        """Registers handler as an action; see action()."""
        if not _ACTION_NAME.match(name):
            raise ValueError(f"action name {name!r}: want UPPER_SNAKE_CASE")
        if not callable(handler):
            raise TypeError(f"action {name}: the handler is not callable")
        if (cache_ttl or 0) < 0 or (timeout or 0) < 0:
            raise ValueError(f"action {name}: negative duration")
        if cache_ttl and not read:
            raise ValueError(f"action {name}: only reads may be cached")
        if self._grpc is not None:
            raise RuntimeError(f"action {name}: register actions before serving")
        if name in self._actions:
            raise ValueError(f"action {name} registered twice")
        self._actions[name] = _Action(name, handler, read, idempotent or read, public, cache_ttl or 0.0,
                                      tuple(versions), timeout or None, doc, ActionStats())

    # Events.

    def publish(self, topic: str, data: Any, visibility: Union[Visibility, dict[str, Any], None] = None) -> None:
        """Sends an event on topic to every stream subscribed to it (or to a
        pattern matching it), with the topic's next seq (from 1). data is a
        JSON-serialisable value, what a read of the object returns.
        visibility (a Visibility or a dict of its fields; default: only
        delegating callers) says who may see it. Never waits for
        subscribers: a stream whose queue is full misses the event and gets
        a gap marker. Raises SocketError INVALID_ARGUMENT for a bad topic or
        data that is not JSON."""
        check_topic(topic, pattern=False)
        try:
            raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        except (TypeError, ValueError, RecursionError):
            raise SocketError(Code.INVALID_ARGUMENT, f"the data of an event on {topic!r} is not JSON") from None
        self.topics.publish(topic, raw, Visibility.of(visibility))

    # Serving.

    async def start(self, address: str = "127.0.0.1:0") -> int:
        """Starts serving on address (HOST:PORT; port 0 picks one) and
        returns the port. Returns at once; see wait() and shutdown()."""
        if self._grpc is not None:
            raise RuntimeError("Server: started twice")
        # Deferred: the stream code imports this module.
        from .stream import connect_handler

        opts = [
            ("grpc.max_receive_message_length", self.max_frame),
            ("grpc.max_send_message_length", self.max_frame),
            # Callers ping as often as every 5s, even with no stream open.
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 5000),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
            ("grpc.so_reuseport", 0),
        ]
        self._grpc = grpc.aio.server(options=opts)
        self._idle, self._stopped = asyncio.Event(), asyncio.Event()
        self._grpc.add_generic_rpc_handlers((
            grpc.method_handlers_generic_handler(SOCKET_SERVICE, {
                "Connect": grpc.stream_stream_rpc_method_handler(connect_handler(self)),
                "Call": grpc.unary_unary_rpc_method_handler(self._call),
                "Describe": grpc.unary_unary_rpc_method_handler(self._describe),
            }),
            self.health.handler(),
        ))
        try:
            port = self._grpc.add_insecure_port(address)
        except RuntimeError as err:
            raise OSError(f"cannot listen on {address}") from err
        if port == 0:
            raise OSError(f"cannot listen on {address}")
        await self._grpc.start()
        for service in ("", SOCKET_SERVICE, self.name):
            self.health.set(service, health.SERVING)
        self.log(logging.INFO, "serving", address=address, port=port, instance=self.instance)
        return int(port)

    async def serve(self, address: str, *, handle_signals: bool = True,
                    ready: Optional[Callable[[int], None]] = None) -> None:
        """Serves on address until SIGTERM or SIGINT (with handle_signals)
        or shutdown(), then drains, and returns once stopped. ready, when
        given, is called with the port once the server listens."""
        port = await self.start(address)
        if ready is not None:
            ready(port)
        if handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.begin_shutdown)
        try:
            await self.wait()
        finally:
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    asyncio.get_running_loop().remove_signal_handler(sig)

    async def wait(self) -> None:
        """Returns once the server has stopped."""
        assert self._stopped is not None, "Server: not started"
        await self._stopped.wait()

    def begin_shutdown(self) -> None:
        """Starts the graceful shutdown (what SIGTERM does) without waiting
        for it; wait() returns when it is over."""
        if self._stopping is None and self._grpc is not None:
            self._stopping = asyncio.get_running_loop().create_task(self._drain())

    async def shutdown(self) -> None:
        """Drains gracefully: health NOT_SERVING, a drain frame on every
        stream, new frames refused UNAVAILABLE (reason draining) and new
        streams refused; requests in flight are answered; once every stream
        ended (or drain_timeout passed) the server stops."""
        self.begin_shutdown()
        if self._stopping is not None:
            await asyncio.shield(self._stopping)

    async def stop(self) -> None:
        """Stops at once: every stream and request ends."""
        if self._grpc is None:
            return
        self.draining = True
        self.health.shutdown()
        await self._grpc.stop(grace=None)
        for t in list(self.tasks):
            t.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=self.drain_timeout)
        assert self._stopped is not None
        self._stopped.set()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_timeout
        self.log(logging.INFO, "draining", streams=len(self.streams))
        self.draining = True
        self.health.shutdown()
        for st in list(self.streams):
            st.drain()
        assert self._idle is not None and self._grpc is not None
        if not self.streams:
            self._idle.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=max(deadline - loop.time(), 0))
        except asyncio.TimeoutError:
            self.log(logging.WARNING, "drain timeout; cancelling requests still in flight")
        # Unary calls and health watchers may still run; grpc waits for
        # them within the bound.
        await self._grpc.stop(grace=max(deadline - loop.time(), 0))
        await self.stop()
        self.log(logging.INFO, "stopped")

    def track(self, st: Any) -> bool:
        """Adds a stream unless the server is draining."""
        if self.draining:
            return False
        self.streams.add(st)
        return True

    def untrack(self, st: Any) -> None:
        self.streams.discard(st)
        if self.draining and not self.streams and self._idle is not None:
            self._idle.set()

    def acquire(self) -> bool:
        """Takes a server-wide in-flight slot."""
        if self.in_flight >= self.max_in_flight:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1

    async def authenticate(self, context: grpc.aio.ServicerContext) -> _Entry:
        """Returns the key the call presents, or aborts it UNAUTHENTICATED."""
        auth = None
        for k, v in context.invocation_metadata() or ():
            if k == METADATA_AUTHORIZATION:
                auth = v if isinstance(v, str) else None
                break
        try:
            return self.keyring.lookup(auth)
        except SocketError as e:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, e.message)
            raise  # not reached: abort raises

    # Admission and running.

    def admit(self, key: _Entry, f: Any) -> Admitted:
        """Checks a request frame against the actions and the caller's key;
        every problem is a SocketError for this frame alone."""
        if not f.action:
            raise SocketError(Code.INVALID_ARGUMENT, f"request {f.id} has no action")
        a = self._actions.get(f.action)
        if a is None:
            raise SocketError(Code.NOT_FOUND, f"service {self.name!r} has no action {f.action!r}",
                              {"action": f.action, "service": self.name})
        if not key.may_call(a.name):
            raise SocketError(Code.PERMISSION_DENIED, f"key {key.name!r} may not call {a.name}")
        m = f.meta
        if a.versions and m.api_version not in a.versions:
            raise SocketError(
                Code.NOT_SUPPORTED,
                f"{a.name} is not supported in API version {m.api_version!r}; supported: [{' '.join(a.versions)}]",
                {"action": a.name, "version": m.api_version, "supported": list(a.versions)},
            )
        kind = f.WhichOneof("payload")
        raw = b""
        if kind == "body_raw":
            raw = f.body_raw
        elif kind == "body":
            try:
                raw = json.dumps(_from_value(f.body), separators=(",", ":"), ensure_ascii=False,
                                 allow_nan=False).encode("utf-8")
            except (ValueError, RecursionError):  # a Value without a kind, NaN, nesting too deep
                raise SocketError(Code.INVALID_ARGUMENT, "body: the value cannot be encoded as JSON") from None
        if len(raw) > self.max_body:
            raise SocketError(Code.INVALID_ARGUMENT, f"body is {len(raw)} bytes; the limit is {self.max_body}",
                              {DETAIL_REASON: REASON_BODY_TOO_LARGE, "limit": self.max_body})
        principal = Principal(key.subject, key.roles)
        p = m.principal
        if p.subject or len(p.roles) > 0:
            if not key.delegate:
                raise SocketError(Code.PERMISSION_DENIED, f"key {key.name!r} may not act for another principal")
            principal = Principal(p.subject, tuple(p.roles))
        meta = Meta(api_version=m.api_version, principal=principal, caller=key.name, traceparent=m.traceparent,
                    tracestate=m.tracestate, idempotency_key=m.idempotency_key, request_id=m.request_id,
                    read_epoch=m.read_epoch)
        return Admitted(a, Request(a.name, f.resource_id, raw), meta, kind == "body_raw", f.timeout_ms)

    def deadline(self, adm: Admitted) -> Optional[float]:
        """A request's timeout in seconds: the frame's, shortened by the
        action's. A write without one runs at most drain_timeout."""
        timeout = adm.timeout_ms / 1000 if adm.timeout_ms else None
        if adm.action.timeout and (timeout is None or adm.action.timeout < timeout):
            timeout = adm.action.timeout
        if timeout is None and not adm.action.read:
            timeout = self.drain_timeout
        return timeout

    async def answer(self, adm: Admitted) -> tuple[Outcome, bool]:
        """Runs an admitted request within its deadline; returns its outcome
        and whether it is a replay. Cancellation (a cancel frame, the
        stream's end for reads) propagates."""
        timeout = self.deadline(adm)
        loop = asyncio.get_running_loop()
        ctx = Context(adm.meta, None if timeout is None else loop.time() + timeout)
        try:
            async with asyncio.timeout(timeout):
                outcome = await self.run(adm, ctx)
        except TimeoutError:
            outcome = (None, SocketError(Code.DEADLINE_EXCEEDED, "deadline exceeded"))
        return outcome, ctx.replayed

    async def run(self, adm: Admitted, ctx: Context) -> Outcome:
        """Runs a request: reads share one handler run with identical reads
        in flight (across all streams), and may be answered from the cache."""
        a = adm.action
        if not a.read or not self._coalesce:
            return await self.exec(a, adm.req, ctx)
        scope = "" if a.public else adm.meta.principal.scope()
        key = flight_key(a.name, adm.req.id, adm.req.raw, adm.meta.api_version, scope, adm.meta.read_epoch)
        cache = self._cache if a.cache_ttl > 0 else None
        loop = asyncio.get_running_loop()
        if cache is not None:
            hit = cache.get(key, loop.time())
            if hit is not None:
                a.stats.coalesced += 1
                return hit, None

        async def shared() -> Outcome:
            # The shared run answers many callers: its own context, with
            # the action's timeout only, and it never marks a replay.
            sctx = Context(adm.meta, None if a.timeout is None else loop.time() + a.timeout)
            try:
                async with asyncio.timeout(a.timeout):
                    outcome = await self.exec(a, adm.req, sctx)
            except TimeoutError:
                outcome = (None, SocketError(Code.DEADLINE_EXCEEDED, "deadline exceeded"))
            if cache is not None and outcome[0] is not None:
                cache.put(key, outcome[0], loop.time() + a.cache_ttl)
            return outcome

        outcome, was_shared = await self.flights.do(key, shared)
        if was_shared:
            a.stats.coalesced += 1
        return outcome

    async def exec(self, a: _Action, req: Request, ctx: Context) -> Outcome:
        """Runs the handler: its result encoded as JSON, a SocketError as
        itself, anything else as INTERNAL (logged, never sent)."""
        a.stats.in_flight += 1
        start = time.perf_counter_ns()
        code: Optional[str] = None
        try:
            result = a.handler(req, ctx)
            if inspect.isawaitable(result):
                result = await result
            try:
                out = json.dumps(result, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
            except (TypeError, ValueError, RecursionError) as err:
                self.log(logging.ERROR, "handler returned a result that is not JSON", err, action=a.name)
                code = Code.INTERNAL.value
                return None, SocketError(Code.INTERNAL, "internal error")
            return out, None
        except SocketError as e:
            e = without_draining_reason(e)
            code = e.code.value
            cause = e.__cause__
            if cause is not None:
                level = logging.ERROR if e.code == Code.INTERNAL else logging.WARNING
                self.log(level, "handler failed", cause, action=a.name, code=code)
            return None, e
        except asyncio.CancelledError:
            code = Code.CANCELED.value
            raise
        except Exception as err:  # a handler's bug, never a crash
            code = Code.INTERNAL.value
            self.log(logging.ERROR, "handler failed", err, action=a.name, code=code)
            return None, SocketError(Code.INTERNAL, "internal error")
        finally:
            a.stats.in_flight -= 1
            a.stats.observe(time.perf_counter_ns() - start, code)

    def response(self, id: int, raw_form: bool, outcome: Outcome, replayed: bool = False) -> Any:
        """Builds the response for an outcome, in the form the request used:
        body_raw gets result_raw, anything else gets result."""
        result, err = outcome
        r = pb.Response(id=id)
        if err is None:
            if raw_form:
                r.ok, r.result_raw = True, result or b"null"
                r.replayed = replayed
                return r
            try:
                json_format.Parse(result or b"null", r.result)
                r.ok, r.replayed = True, replayed
                return r
            except Exception:
                err = SocketError(Code.INTERNAL, "the handler returned invalid JSON")
                r.ClearField("result")
        r.error.code = err.code.value
        r.error.message = err.message
        if err.details:
            try:
                r.error.details.update(err.details)
            except Exception:  # details that are not JSON: the code and message still go
                r.error.ClearField("details")
                self.log(logging.ERROR, "error details are not JSON", code=err.code.value)
        r.replayed = replayed
        return r

    def encode(self, resp: Any) -> bytes:
        """Encodes a response frame; one over max_frame is replaced by an
        INTERNAL error for the same request (the stream carries on)."""
        frame = bytes(pb.ConnectResponse(response=resp).SerializeToString())
        if len(frame) <= self.max_frame:
            return frame
        self.log(logging.ERROR, "a frame could not be sent", request_id=resp.id, size=len(frame))
        e = SocketError(Code.INTERNAL,
                        f"the answer could not be sent: the frame is {len(frame)} bytes; the limit is {self.max_frame}")
        return bytes(pb.ConnectResponse(response=self.response(resp.id, False, (None, e))).SerializeToString())

    # Unary methods.

    async def _call(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        key = await self.authenticate(context)
        try:
            f = pb.CallRequest.FromString(request).request
        except Exception:
            await context.abort(grpc.StatusCode.INTERNAL, "the request could not be decoded")
            raise
        try:
            adm = self.admit(key, f)
        except SocketError as e:
            return bytes(pb.CallResponse(response=self.response(f.id, False, (None, e))).SerializeToString())
        if not self.acquire():
            busy = SocketError(Code.RESOURCE_EXHAUSTED, "too many requests in flight on this server")
            return bytes(pb.CallResponse(response=self.response(f.id, adm.raw_form, (None, busy))).SerializeToString())
        task = asyncio.ensure_future(self.answer(adm))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda _t: self.release())
        try:
            # A write is not cancelled when its caller goes away: it runs
            # to its deadline, its outcome recorded for a retry to find.
            outcome, replayed = await (task if adm.action.read else asyncio.shield(task))
        finally:
            if adm.action.read:
                task.cancel()
        resp = self.response(f.id, adm.raw_form, outcome, replayed)
        return bytes(pb.CallResponse(response=resp).SerializeToString())

    async def _describe(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        key = await self.authenticate(context)
        out = pb.DescribeResponse(service=self.name, version=self.version, instance=self.instance)
        for name in sorted(self._actions):
            a = self._actions[name]
            if not key.may_call(name):
                continue
            act = out.actions.add(
                name=name,
                kind=pb.ACTION_KIND_READ if a.read else pb.ACTION_KIND_WRITE,
                idempotent=a.idempotent,
                versions=list(a.versions),
                doc=a.doc,
                public=a.public,
            )
            act.cache_ttl.CopyFrom(duration(a.cache_ttl))
            act.timeout.CopyFrom(duration(a.timeout or 0))
            act.stats.CopyFrom(a.stats.proto())
        return bytes(out.SerializeToString())
