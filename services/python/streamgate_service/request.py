"""What a handler receives: the request and its context."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from .errors import REASON_UNKNOWN_FIELD, Code, SocketError


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the end user a delegating key acts for, or
    the key itself."""

    subject: str = ""
    roles: tuple[str, ...] = ()

    def has_role(self, role: str) -> bool:
        """Reports whether the principal has the role."""
        return role in self.roles

    def scope(self) -> str:
        """The principal's subject and roles, quoted so that no two
        principals share one: part of a coalesced read's key."""
        if not self.subject and not self.roles:
            return '""'
        return ",".join(json.dumps(s) for s in (self.subject, *self.roles))


@dataclass(frozen=True)
class Meta:
    """Travels with every request: who asks, in which API version, under
    which trace."""

    api_version: str = ""
    principal: Principal = field(default_factory=Principal)
    #: The name of the key that opened the stream.
    caller: str = ""
    traceparent: str = ""
    tracestate: str = ""
    idempotency_key: str = ""
    request_id: str = ""
    #: For reads: which writes the caller has seen; reads with different
    #: epochs never share a handler run.
    read_epoch: str = ""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes) -> Any:
    """Decodes a JSON body strictly (no NaN or Infinity); an empty body is
    None. Invalid JSON is INVALID_ARGUMENT."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise SocketError(Code.INVALID_ARGUMENT, "invalid JSON body: nested too deeply") from None
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError among them
        pos = getattr(err, "pos", None)
        where = f" at offset {pos}" if isinstance(pos, int) else ""
        raise SocketError(Code.INVALID_ARGUMENT, f"invalid JSON body{where}") from None


def check_fields(obj: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """Returns obj (a decoded JSON object, or one nested in a body) when it
    has only the fields named; raises SocketError INVALID_ARGUMENT reason
    unknown_field, details field, otherwise."""
    allowed = set(fields)
    for k in obj:
        if k not in allowed:
            raise SocketError(Code.INVALID_ARGUMENT, f"invalid body: unknown field {json.dumps(k)}",
                              {"field": k, "reason": REASON_UNKNOWN_FIELD})
    return obj


@dataclass(frozen=True)
class Request:
    """One action frame, as its handler sees it."""

    #: The action's name, e.g. GET_ITEM.
    action: str
    #: The resource the action is about ("" for collection actions).
    id: str
    #: The body as the caller sent it: JSON bytes, b"" when there is none.
    raw: bytes

    @property
    def body(self) -> Any:
        """The body decoded from JSON; None when there is none. Invalid JSON
        raises SocketError INVALID_ARGUMENT, which answers the request."""
        return parse_json(self.raw)

    def object(self, *fields: str, any_fields: bool = False) -> dict[str, Any]:
        """The body decoded strictly as a JSON object with only the fields
        named (any, with any_fields); an empty body is {}. Anything else
        raises SocketError INVALID_ARGUMENT: a field not named has reason
        unknown_field and details field, as Go's DecodeBody has it."""
        body = self.body
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise SocketError(Code.INVALID_ARGUMENT, "invalid body: want a JSON object")
        if any_fields:
            return body
        return check_fields(body, fields)


class Context:
    """A request's context: its meta and deadline, and the one thing a
    handler may tell the runtime about its answer (mark_replayed).

    The handler runs as an asyncio task: a cancel frame, a passed deadline
    or (for reads) the caller's stream ending cancel it, so it sees
    asyncio.CancelledError at its next await.
    """

    __slots__ = ("meta", "deadline", "replayed")

    def __init__(self, meta: Meta, deadline: Optional[float]) -> None:
        self.meta = meta
        #: The loop time (asyncio's loop.time()) the request must be answered
        #: by; None when it has no deadline.
        self.deadline = deadline
        self.replayed = False

    def mark_replayed(self) -> None:
        """Says the answer is the stored outcome of an earlier request with
        the same idempotency key: the service did not act again. The
        response carries the flag. Has no effect in a coalesced read's
        shared run."""
        self.replayed = True

    def time_remaining(self) -> float:
        """Seconds left until the deadline; inf without one."""
        if self.deadline is None:
            return math.inf
        return self.deadline - asyncio.get_running_loop().time()
