"""Events: topics, visibility, and each stream's bounded event queue
(docs/protocol.md §10)."""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from ._proto import pb
from .errors import Code, SocketError
from .request import Principal

#: How many events wait for one stream. A stream that does not read fills
#: it; then its events are dropped, so it never holds up publishers or other
#: streams, and a gap marker sent as soon as the queue has room tells its
#: caller events are missing.
EVENT_QUEUE = 256

#: The longest topic, in bytes.
MAX_TOPIC = 256

#: How many topics' seqs a server remembers; past it they start again from 1
#: (subscribers see a jump), the price of bounded memory.
MAX_TOPIC_SEQS = 1 << 18


@dataclass(frozen=True)
class Visibility:
    """Who may see an event. A delegating caller (the gateway) receives every
    event and filters for its own clients; any other caller receives only
    the events its key's principal may see."""

    public: bool = False
    subjects: Sequence[str] = ()
    roles: Sequence[str] = ()

    def allows(self, p: Principal) -> bool:
        """Reports whether p may see an event of this visibility."""
        return self.public or p.subject in self.subjects or any(p.has_role(r) for r in self.roles)

    @classmethod
    def of(cls, v: "Visibility | Mapping[str, Any] | None") -> "Visibility":
        """Accepts a Visibility, a dict with its fields, or None (nobody but
        delegating callers)."""
        if v is None:
            return cls()
        if isinstance(v, Visibility):
            return v
        return cls(bool(v.get("public", False)), tuple(v.get("subjects") or ()), tuple(v.get("roles") or ()))

    def proto(self) -> Any:
        return pb.Visibility(public=self.public, subjects=list(self.subjects), roles=list(self.roles))


def check_topic(topic: str, pattern: bool) -> None:
    """Validates a topic: segments separated by "/", none empty; with
    pattern, the last segment may be "*". Raises INVALID_ARGUMENT."""
    try:
        size = len(topic.encode("utf-8"))
    except UnicodeEncodeError:
        raise SocketError(Code.INVALID_ARGUMENT, "a topic is UTF-8 text") from None
    if size == 0 or size > MAX_TOPIC:
        raise SocketError(Code.INVALID_ARGUMENT, f"a topic has 1 to {MAX_TOPIC} bytes")
    segs = topic.split("/")
    for i, s in enumerate(segs):
        if s == "":
            raise SocketError(Code.INVALID_ARGUMENT, f"topic {topic!r} has an empty segment")
        if s == "*" and pattern and i == len(segs) - 1:
            continue
        if any(c in s for c in "* \t\r\n"):
            raise SocketError(
                Code.INVALID_ARGUMENT,
                f'topic {topic!r}: "*" is only a whole last segment of a subscription, and topics have no spaces',
            )


def topic_matches(pattern: str, topic: str) -> bool:
    """Reports whether a topic falls under a subscription's topic or
    pattern."""
    if pattern == topic or pattern == "*":
        return True
    return pattern.endswith("*") and topic.startswith(pattern[:-1])


GAP_MARKER: bytes = pb.ConnectResponse(event=pb.Event(gap=True)).SerializeToString()


class Subscriptions:
    """One stream's subscriptions and event queue. publish() offers events
    without waiting; the stream's pump takes them (next())."""

    def __init__(self, everything: bool, principal: Principal) -> None:
        self._topics: set[str] = set()  # exact topics subscribed
        self._patterns: set[str] = set()  # patterns subscribed ("orders/*")
        self._everything = everything  # the key may delegate: every event
        self._principal = principal  # otherwise: what this principal may see
        self._queue: collections.deque[bytes] = collections.deque()
        self._dropped = False
        self._ready = asyncio.Event()

    def add(self, topic: str) -> None:
        (self._patterns if topic.endswith("*") else self._topics).add(topic)

    def remove(self, topic: str) -> None:
        (self._patterns if topic.endswith("*") else self._topics).discard(topic)

    def wants(self, topic: str) -> bool:
        return topic in self._topics or any(topic_matches(p, topic) for p in self._patterns)

    def offer(self, vis: Visibility, frame: bytes) -> bool:
        """Queues an event's frame if the stream may see it; reports False
        when the queue was full and the event was dropped."""
        if not self._everything and not vis.allows(self._principal):
            return True
        if len(self._queue) >= EVENT_QUEUE:
            self._dropped = True
            self._ready.set()
            return False
        self._queue.append(frame)
        self._ready.set()
        return True

    async def next(self) -> bytes:
        """Waits for the next frame to send: a gap marker first when events
        were dropped since the last one."""
        while True:
            if self._dropped:
                self._dropped = False
                return GAP_MARKER
            if self._queue:
                return self._queue.popleft()
            self._ready.clear()
            await self._ready.wait()


class Topics:
    """A server's topic seqs and subscribed streams."""

    def __init__(self) -> None:
        self._seqs: dict[str, int] = {}
        self.subs: dict[object, Subscriptions] = {}  # by stream

    def next_seq(self, topic: str) -> int:
        if len(self._seqs) >= MAX_TOPIC_SEQS and topic not in self._seqs:
            self._seqs.clear()
        seq = self._seqs.get(topic, 0) + 1
        self._seqs[topic] = seq
        return seq

    def publish(self, topic: str, raw: bytes, vis: Visibility) -> int:
        """Offers the event to every subscribed stream; returns how many
        streams dropped it."""
        ev = pb.Event(topic=topic, seq=self.next_seq(topic), data=raw, visibility=vis.proto())
        frame = pb.ConnectResponse(event=ev).SerializeToString()
        dropped = 0
        for sub in self.subs.values():
            if sub.wants(topic) and not sub.offer(vis, frame):
                dropped += 1
        return dropped

    def subscriptions(self, stream: object) -> Optional[Subscriptions]:
        return self.subs.get(stream)

    def add(self, stream: object, sub: Subscriptions) -> None:
        self.subs[stream] = sub

    def forget(self, stream: object) -> None:
        self.subs.pop(stream, None)
