"""The standard errors that cross a socket (docs/protocol.md §6)."""

from __future__ import annotations

import enum
from typing import Any, Mapping, Optional, Union


class Code(str, enum.Enum):
    """The standard error codes. The set is closed: an error with any other
    code goes out as INTERNAL."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    CONFLICT = "CONFLICT"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    CANCELED = "CANCELED"
    INTERNAL = "INTERNAL"

    def __str__(self) -> str:
        return self.value


#: The details key that refines a code.
DETAIL_REASON = "reason"
#: The reason of an UNAVAILABLE answer to a frame that arrived after the
#: stream was drained: the action did not run, so it may be sent again
#: elsewhere, even a write. Only the runtime gives it.
REASON_DRAINING = "draining"
#: The reason of INVALID_ARGUMENT for a body over the limit.
REASON_BODY_TOO_LARGE = "body_too_large"
#: The reason of INVALID_ARGUMENT for a body field the action does not take
#: (details "field" names it).
REASON_UNKNOWN_FIELD = "unknown_field"


class SocketError(Exception):
    """An error a handler raises to answer with a standard code.

    The message and details reach the caller; keep internal causes out of
    them (chain them with ``raise SocketError(...) from err``: the cause is
    logged, never sent). Any other exception a handler raises becomes
    INTERNAL "internal error".
    """

    code: Code
    message: str
    details: Optional[dict[str, Any]]

    def __init__(self, code: Union[Code, str], message: str, details: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(f"{code}: {message}")
        try:
            self.code = Code(code)
        except ValueError:
            self.code = Code.INTERNAL  # outside the standard set
        self.message = message
        self.details = dict(details) if details else None

    @property
    def reason(self) -> Optional[str]:
        """The details' reason, if any."""
        r = (self.details or {}).get(DETAIL_REASON)
        return r if isinstance(r, str) else None

    def __repr__(self) -> str:
        return f"SocketError({self.code.value!r}, {self.message!r}, {self.details!r})"


def draining_error() -> SocketError:
    """The answer to a request frame that arrived after the drain frame."""
    return SocketError(
        Code.UNAVAILABLE,
        "the stream is draining: send the request on another stream",
        {DETAIL_REASON: REASON_DRAINING},
    )


def without_draining_reason(e: SocketError) -> SocketError:
    """Keeps a handler from passing on the draining reason it got from
    another service: that reason promises the action did not run, which
    only the runtime can say."""
    if e.reason != REASON_DRAINING:
        return e
    details = {k: v for k, v in (e.details or {}).items() if k != DETAIL_REASON}
    return SocketError(e.code, e.message, details or None)
