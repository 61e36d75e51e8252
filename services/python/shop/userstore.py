"""The users service's stores: in memory, and on PostgreSQL with exactly
the Go store's schema (services/users/sqlstore.go), so a Go and a Python
instance can share one database.

Emails are unique. Create, update and delete apply at most once per
idempotency key (once.Held): the key is kept with the row, in the same
transaction, in users_applied_keys.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Optional, Protocol

from . import once
from .gojson import rfc3339nano
from .pgdb import Database, psycopg2

ACTIVE = "active"
SUSPENDED = "suspended"

#: The table of applied idempotency keys, as the Go store names it.
KEYS_TABLE = "users_applied_keys"


@dataclass(frozen=True)
class User:
    """An account; created is Unix nanoseconds (UTC)."""

    id: str
    name: str
    email: str
    status: str
    created: int

    def json(self) -> dict[str, Any]:
        """The user as the Go service encodes it."""
        return {"id": self.id, "name": self.name, "email": self.email, "status": self.status,
                "created_at": rfc3339nano(self.created)}


def now() -> int:
    """The time a user is created at."""
    return time.time_ns()


@dataclass(frozen=True)
class Query:
    """Selects users: those with the status and email given (empty matches
    any) and an id greater than after, in id order (byte-wise), at most
    limit of them."""

    status: str = ""
    email: str = ""
    after: str = ""
    limit: int = 0


@dataclass(frozen=True)
class Patch:
    """The fields to change; None leaves one as it is."""

    name: Optional[str] = None
    email: Optional[str] = None
    status: Optional[str] = None


class NotFound(Exception):
    """No such user."""


class IDTaken(Exception):
    """The id is taken."""


class EmailTaken(Exception):
    """The email is taken."""


class Store(Protocol):
    """What the service needs of a store (the Go Store interface)."""

    async def applied(self, k: once.Key) -> Optional[once.Record]: ...
    async def get(self, id: str) -> User: ...
    async def list(self, q: Query) -> list[User]: ...
    async def create(self, u: User, held: Optional[once.Held] = None) -> None: ...
    async def update(self, id: str, p: Patch, held: Optional[once.Held] = None) -> User: ...
    async def delete(self, id: str, held: Optional[once.Held] = None) -> User: ...


class MemoryStore:
    """The in-memory store. Its methods change the maps without awaiting,
    so each is atomic on the event loop."""

    def __init__(self) -> None:
        self.by_id: dict[str, User] = {}
        self.by_email: dict[str, str] = {}  # email → id
        self.keys = once.MemoryLedger()

    async def applied(self, k: once.Key) -> Optional[once.Record]:
        return await self.keys.applied(k)

    async def get(self, id: str) -> User:
        u = self.by_id.get(id)
        if u is None:
            raise NotFound(id)
        return u

    async def list(self, q: Query) -> list[User]:
        out = [u for u in self.by_id.values()
               if u.id > q.after and (not q.status or u.status == q.status) and (not q.email or u.email == q.email)]
        out.sort(key=lambda u: u.id.encode("utf-8", "surrogatepass"))
        return out[:max(q.limit, 0)]

    async def create(self, u: User, held: Optional[once.Held] = None) -> None:
        def write() -> Any:
            if u.id in self.by_id:
                raise IDTaken(u.id)
            if u.email in self.by_email:
                raise EmailTaken(u.email)
            self.by_id[u.id] = u
            self.by_email[u.email] = u.id
            return u.json()

        self.keys.write(held, write)

    async def update(self, id: str, p: Patch, held: Optional[once.Held] = None) -> User:
        changed: list[User] = []

        def write() -> Any:
            u = self.by_id.get(id)
            if u is None:
                raise NotFound(id)
            if p.email is not None and p.email != u.email:
                if p.email in self.by_email:
                    raise EmailTaken(p.email)
                del self.by_email[u.email]
                u = replace(u, email=p.email)
                self.by_email[u.email] = id
            if p.name is not None:
                u = replace(u, name=p.name)
            if p.status is not None:
                u = replace(u, status=p.status)
            self.by_id[id] = u
            changed.append(u)
            return u.json()

        self.keys.write(held, write)
        return changed[0]

    async def delete(self, id: str, held: Optional[once.Held] = None) -> User:
        gone: list[User] = []

        def write() -> Any:
            u = self.by_id.pop(id, None)
            if u is None:
                raise NotFound(id)
            del self.by_email[u.email]
            gone.append(u)
            return u.json()

        self.keys.write(held, write)
        return gone[0]


USER_COLUMNS = "id, name, email, status, created_at"

#: The Go store's migration on PostgreSQL, statement for statement.
MIGRATION = [
    """CREATE TABLE IF NOT EXISTS users (
			id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
			name TEXT NOT NULL,
			email TEXT NOT NULL UNIQUE,
			status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
			created_at BIGINT NOT NULL
		)""",
    "CREATE INDEX IF NOT EXISTS users_status_id ON users (status, id)",
]

UNIQUE_VIOLATION = "23505"


def _user(row: Any) -> User:
    return User(row[0], row[1], row[2], row[3], int(row[4]))


class PostgresStore:
    """The store on PostgreSQL: email uniqueness is the table's UNIQUE
    constraint and a key's uniqueness the primary key of
    users_applied_keys, so both hold across instances, Go's too."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    async def open(cls, db: Database) -> "PostgresStore":
        """Creates the tables if missing, as the Go store does."""
        await db.migrate("users", MIGRATION)
        await db.migrate(KEYS_TABLE, once.table_statements(KEYS_TABLE))
        return cls(db)

    async def applied(self, k: once.Key) -> Optional[once.Record]:
        return await self.db.run(lambda cur: once.sql_applied(cur, KEYS_TABLE, k))

    async def get(self, id: str) -> User:
        def get(cur: Any) -> Optional[User]:
            cur.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = %s", (id,))
            row = cur.fetchone()
            return _user(row) if row else None

        u = await self.db.run(get)
        if u is None:
            raise NotFound(id)
        return u

    async def list(self, q: Query) -> list[User]:
        sql = f"SELECT {USER_COLUMNS} FROM users WHERE id > %s"
        args: list[Any] = [q.after]
        if q.status:
            sql += " AND status = %s"
            args.append(q.status)
        if q.email:
            sql += " AND email = %s"
            args.append(q.email)
        sql += " ORDER BY id LIMIT %s"
        args.append(max(q.limit, 0))

        def run(cur: Any) -> list[User]:
            cur.execute(sql, args)
            return [_user(r) for r in cur.fetchall()]

        return await self.db.run(run)

    async def _write(self, held: Optional[once.Held], write: Any) -> Any:
        """Runs write(cur) in a transaction that first claims the held key
        and keeps write's result (a User) with it."""

        def tx(cur: Any) -> Any:
            once.sql_claim(cur, KEYS_TABLE, held)
            u = write(cur)
            once.sql_keep(cur, KEYS_TABLE, held, u.json())
            return u

        u = await self.db.run(tx)
        if held is not None:
            held.kept = True
        return u

    async def create(self, u: User, held: Optional[once.Held] = None) -> None:
        # ON CONFLICT DO NOTHING, then which of id and email clashed;
        # should the clashing row vanish in between, again.
        def create(cur: Any) -> User:
            for _ in range(3):
                cur.execute(f"INSERT INTO users ({USER_COLUMNS}) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                            (u.id, u.name, u.email, u.status, u.created))
                if cur.rowcount == 1:
                    return u
                cur.execute("SELECT id FROM users WHERE id = %s OR email = %s", (u.id, u.email))
                ids = [r[0] for r in cur.fetchall()]
                if u.id in ids:
                    raise IDTaken(u.id)
                if ids:
                    raise EmailTaken(u.email)
            raise RuntimeError("create user: conflict did not settle after 3 tries")

        await self._write(held, create)

    async def update(self, id: str, p: Patch, held: Optional[once.Held] = None) -> User:
        sets, args = [], []
        for col, v in (("name", p.name), ("email", p.email), ("status", p.status)):
            if v is not None:
                sets.append(f"{col} = %s")
                args.append(v)
        sql = f"SELECT {USER_COLUMNS} FROM users WHERE id = %s"
        if sets:
            sql = f"UPDATE users SET {', '.join(sets)} WHERE id = %s RETURNING {USER_COLUMNS}"

        def update(cur: Any) -> User:
            try:
                cur.execute(sql, (*args, id))
            except psycopg2.Error as err:
                if err.pgcode == UNIQUE_VIOLATION:
                    raise EmailTaken(p.email) from None
                raise
            row = cur.fetchone()
            if row is None:
                raise NotFound(id)
            return _user(row)

        return await self._write(held, update)

    async def delete(self, id: str, held: Optional[once.Held] = None) -> User:
        def delete(cur: Any) -> User:
            cur.execute(f"DELETE FROM users WHERE id = %s RETURNING {USER_COLUMNS}", (id,))
            row = cur.fetchone()
            if row is None:
                raise NotFound(id)
            return _user(row)

        return await self._write(held, delete)

