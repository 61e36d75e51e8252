"""Keys: the credentials callers present when they open a stream."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

from .errors import Code, SocketError

_HASH = re.compile(r"^sha256:[0-9a-fA-F]{64}$")


def hash_key(secret: str) -> str:
    """Returns the form of a secret that ``Key(hash=...)`` takes: "sha256:"
    and the hex digest."""
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Key:
    """A key a server accepts: gRPC metadata ``authorization: Bearer SECRET``.

    Give ``secret`` or ``hash`` (``hash_key(secret)``, for configuration that
    must not hold secrets), not both. ``actions``, when given, are the only
    actions the key may call (others get PERMISSION_DENIED, and it may not
    subscribe). ``delegate`` lets the key name another principal in a
    request's meta (the gateway forwarding its end users). ``roles`` and
    ``subject`` (default: the name) make the principal when the key itself
    is the caller.
    """

    name: str
    secret: Optional[str] = field(default=None, repr=False)
    hash: Optional[str] = None
    delegate: bool = False
    actions: Optional[Sequence[str]] = None
    roles: Sequence[str] = ()
    subject: Optional[str] = None


@dataclass(frozen=True)
class _Entry:
    """An accepted key, without its secret."""

    name: str
    digest: bytes
    delegate: bool
    actions: Optional[frozenset[str]]  # None: every action
    roles: tuple[str, ...]
    subject: str

    def may_call(self, action: str) -> bool:
        return self.actions is None or action in self.actions


def _entry(key: Key) -> _Entry:
    if not key.name:
        raise ValueError("key without a name")
    if key.secret and key.hash:
        raise ValueError(f"key {key.name!r}: set secret or hash, not both")
    if key.secret:
        digest = hashlib.sha256(key.secret.encode("utf-8")).digest()
    elif key.hash:
        if not _HASH.match(key.hash):
            raise ValueError(f'key {key.name!r}: hash must be "sha256:" and 64 hex digits')
        digest = bytes.fromhex(key.hash[len("sha256:"):])
    else:
        raise ValueError(f"key {key.name!r}: no secret or hash")
    actions = frozenset(key.actions) if key.actions else None
    return _Entry(key.name, digest, key.delegate, actions, tuple(key.roles), key.subject or key.name)


class Keyring:
    """The keys a server accepts, found by their secret's hash and compared
    in constant time."""

    def __init__(self, keys: Iterable[Key]) -> None:
        self._by_digest: dict[bytes, _Entry] = {}
        names: set[str] = set()
        for key in keys:
            e = _entry(key)
            if e.name in names:
                raise ValueError(f"key {e.name!r}: name already in use")
            if e.digest in self._by_digest:
                raise ValueError(f"key {e.name!r}: the same secret is already in use")
            names.add(e.name)
            self._by_digest[e.digest] = e

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, authorization: Optional[str]) -> _Entry:
        """Returns the key an ``authorization`` metadata value presents, or
        raises UNAUTHENTICATED."""
        if authorization is None:
            raise SocketError(Code.UNAUTHENTICATED, 'missing "authorization" metadata: send "Bearer KEY"')
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret:
            raise SocketError(Code.UNAUTHENTICATED, 'malformed "authorization" metadata: want "Bearer KEY"')
        digest = hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()
        e = self._by_digest.get(digest)
        if e is None or not hmac.compare_digest(e.digest, digest):
            raise SocketError(Code.UNAUTHENTICATED, "unknown or revoked key")
        return e
