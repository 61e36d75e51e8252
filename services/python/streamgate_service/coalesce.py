"""Identical reads in flight share one handler run; an optional TTL cache
keeps read results (docs/protocol.md §8)."""

from __future__ import annotations

import asyncio
import collections
import json
from typing import Awaitable, Callable, Generic, Optional, TypeVar

T = TypeVar("T")


def canonical_json(raw: bytes) -> bytes:
    """The body with insignificant differences removed (whitespace, the
    order of object keys); invalid JSON is kept as it is."""
    raw = raw.strip(b" \t\r\n")
    if not raw:
        return b""
    try:
        v = json.loads(raw)
    except (ValueError, RecursionError):
        return raw
    try:
        return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    except (ValueError, RecursionError):
        return raw


def flight_key(action: str, resource_id: str, raw: bytes, api_version: str, scope: str, epoch: str) -> bytes:
    """The key of a read: action, id, API version, principal scope (empty
    for public actions), read epoch and canonical body, each part
    separated so no two reads share a key by accident."""
    head = "\x00".join((action, resource_id, api_version, scope, epoch)).encode("utf-8", "surrogatepass")
    return head + b"\x00" + canonical_json(raw)


class _Flight(Generic[T]):
    __slots__ = ("task", "waiters")

    def __init__(self, task: "asyncio.Task[T]") -> None:
        self.task = task
        self.waiters = 1


class Flights(Generic[T]):
    """Runs identical work once for every caller waiting for it at the same
    moment. The shared run is a task of its own: a caller that gives up (its
    deadline, a cancel frame) leaves without ending it for the others; the
    last one out cancels it and frees the key, so the next caller runs
    afresh."""

    def __init__(self) -> None:
        self._flights: dict[bytes, _Flight[T]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def waiting(self) -> int:
        """How many callers wait for work in flight (tests use it)."""
        return sum(f.waiters for f in self._flights.values())

    async def do(self, key: bytes, work: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Returns work's result for key, running work only if no call for
        key is in flight, and whether the result was shared. work must not
        raise (return errors as values) except when cancelled."""
        f = self._flights.get(key)
        shared = f is not None
        if f is None:
            f = _Flight(asyncio.ensure_future(work()))
            self._flights[key] = f
            flight = f

            def ended(_: "asyncio.Task[T]") -> None:
                self._ended(key, flight)

            f.task.add_done_callback(ended)
        else:
            f.waiters += 1
        try:
            return await asyncio.shield(f.task), shared
        finally:
            f.waiters -= 1
            if f.waiters == 0 and not f.task.done():
                # Every caller gave up: end the work, free the key now.
                self._ended(key, f)
                f.task.cancel()

    def _ended(self, key: bytes, f: _Flight[T]) -> None:
        if self._flights.get(key) is f:
            del self._flights[key]


class TTLCache(Generic[T]):
    """Results by key for a time, at most `size` of them (the oldest
    written go first)."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._entries: collections.OrderedDict[bytes, tuple[float, T]] = collections.OrderedDict()

    def get(self, key: bytes, now: float) -> Optional[T]:
        e = self._entries.get(key)
        if e is None:
            return None
        if e[0] <= now:
            del self._entries[key]
            return None
        return e[1]

    def put(self, key: bytes, value: T, expires: float) -> None:
        self._entries[key] = (expires, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
