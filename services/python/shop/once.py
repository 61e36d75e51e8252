"""Writes that apply at most once per idempotency key: Go's
services/internal/once, with the same fingerprints and the same table.

The gateway derives a key per write ("HEX:ACTION") and sends it in the
frame's meta. keyed() wraps a write action: a key applied before answers
its first result again, marked replayed; the key with another request is
CONFLICT reason idempotency_key_reused; otherwise the handler runs with a
Held key for its store, which keeps the key with its result in the same
transaction as the row (MemoryLedger.write, or claim()/keep() in SQL).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional, Protocol

from streamgate_service import DETAIL_REASON, Code, Context, Request, SocketError

from .gojson import canonical

#: The details reason of a key sent again with another request.
REASON_KEY_REUSED = "idempotency_key_reused"


@dataclass(frozen=True)
class Key:
    """One keyed write: whose key, the key, and the request's digest."""

    subject: str
    id: str
    fingerprint: str


@dataclass(frozen=True)
class Record:
    """What is kept for an applied key: its request's fingerprint and the
    write's result as JSON text."""

    fingerprint: str
    result: str


class AppliedError(Exception):
    """A store's write under a key that was applied already (by an earlier
    or a concurrent request): nothing changed."""

    def __init__(self, record: Record) -> None:
        super().__init__("the idempotency key was applied already")
        self.record = record


class Held:
    """The key a write runs under, and whether its store kept it."""

    __slots__ = ("key", "kept")

    def __init__(self, key: Key) -> None:
        self.key = key
        self.kept = False


class Ledger(Protocol):
    """Finds the record of a key applied before."""

    async def applied(self, k: Key) -> Optional[Record]: ...


def fingerprint(req: Request) -> str:
    """once.Fingerprint: SHA-256 of the action, the resource id and the
    canonical body, each prefixed with its length."""
    h = hashlib.sha256()
    for part in (req.action.encode(), req.id.encode(), canonical(req.raw)):
        h.update(f"{len(part)}:".encode())
        h.update(part)
    return h.hexdigest()


def encode(result: Any) -> str:
    """A write's result as kept in a record."""
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


#: A keyed write's handler: the request, its context and the key it runs
#: under (None without one).
KeyedHandler = Callable[[Request, Context, Optional[Held]], Awaitable[Any]]


def keyed(ledger: Ledger, handler: KeyedHandler) -> Callable[[Request, Context], Awaitable[Any]]:
    """once.Keyed: the middleware of a write action."""

    async def run(req: Request, ctx: Context) -> Any:
        if not ctx.meta.idempotency_key:
            return await handler(req, ctx, None)
        k = Key(ctx.meta.principal.subject, ctx.meta.idempotency_key, fingerprint(req))
        rec = await ledger.applied(k)
        if rec is not None:
            return _replay(ctx, k, rec)
        held = Held(k)
        try:
            result = await handler(req, ctx, held)
        except AppliedError as e:
            return _replay(ctx, k, e.record)
        except Exception:
            if not held.kept:
                rec = await _applied_quietly(ledger, k)
                if rec is not None:
                    return _replay(ctx, k, rec)
            raise
        if not held.kept:
            # The run wrote nothing under the key: when a concurrent
            # request with the key did, its result is the answer.
            rec = await _applied_quietly(ledger, k)
            if rec is not None:
                return _replay(ctx, k, rec)
        return result

    return run


async def _applied_quietly(ledger: Ledger, k: Key) -> Optional[Record]:
    try:
        return await ledger.applied(k)
    except Exception:  # the run's own answer stands
        return None


def _replay(ctx: Context, k: Key, rec: Record) -> Any:
    if rec.fingerprint != k.fingerprint:
        raise SocketError(Code.CONFLICT, "the Idempotency-Key was used with a different request",
                          {DETAIL_REASON: REASON_KEY_REUSED})
    ctx.mark_replayed()
    return json.loads(rec.result)


class MemoryLedger:
    """once.Memory: the records of a memory store's keys. write() runs in
    one step of the event loop, so the row and its key change together."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], Record] = {}

    async def applied(self, k: Key) -> Optional[Record]:
        return self.records.get((k.subject, k.id))

    def write(self, held: Optional[Held], write: Callable[[], Any]) -> Any:
        """Runs write (which changes the store's maps and returns the result
        to keep) and keeps its result under the held key. When the key was
        applied already it changes nothing and raises AppliedError; when
        write raises, nothing is kept."""
        if held is None:
            return write()
        k = held.key
        rec = self.records.get((k.subject, k.id))
        if rec is not None:
            raise AppliedError(rec)
        result = write()
        self.records[(k.subject, k.id)] = Record(k.fingerprint, encode(result))
        held.kept = True
        return result


def table_statements(name: str) -> list[str]:
    """once.NewTable's migration, statement for statement."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {name} (
			subject     TEXT   NOT NULL,
			idem_key    TEXT   NOT NULL,
			fingerprint TEXT   NOT NULL,
			result      TEXT   NOT NULL,
			created_at  BIGINT NOT NULL,
			PRIMARY KEY (subject, idem_key)
		)""",
    ]


def sql_applied(cur: Any, table: str, k: Key) -> Optional[Record]:
    """The record of k's subject and id in table, read with cursor cur."""
    cur.execute(f"SELECT fingerprint, result FROM {table} WHERE subject = %s AND idem_key = %s", (k.subject, k.id))
    row = cur.fetchone()
    return Record(row[0], row[1]) if row else None


def sql_claim(cur: Any, table: str, held: Optional[Held]) -> None:
    """once.Table's claim, first in a write's transaction: inserts the
    key's row; when there is one (a concurrent claim waits for the other
    transaction), raises AppliedError with it."""
    if held is None:
        return
    k = held.key
    cur.execute(f"""INSERT INTO {table} (subject, idem_key, fingerprint, result, created_at) VALUES (%s, %s, %s, '', %s)
		ON CONFLICT (subject, idem_key) DO NOTHING""", (k.subject, k.id, k.fingerprint, time.time_ns()))
    if cur.rowcount == 1:
        return
    rec = sql_applied(cur, table, k)
    if rec is None:
        raise RuntimeError("claim idempotency key: taken, then gone")
    raise AppliedError(rec)


def sql_keep(cur: Any, table: str, held: Optional[Held], result: Any) -> None:
    """Keeps the write's result with its claimed key, before the commit."""
    if held is not None:
        k = held.key
        cur.execute(f"UPDATE {table} SET result = %s WHERE subject = %s AND idem_key = %s", (encode(result), k.subject, k.id))
