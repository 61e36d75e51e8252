"""PostgreSQL for the shop's Python services: psycopg2 connections in a
small pool, used from threads so the event loop never waits on the
database; the Go services' sqldb in what matters to callers.

    db = await Database.open("postgres://postgres@127.0.0.1:5432/shop?sslmode=disable&search_path=s1")
    await db.migrate("users", ["CREATE TABLE IF NOT EXISTS users (…)"])
    user = await db.run(lambda cur: (cur.execute("SELECT … WHERE id = %s", (id,)), cur.fetchone())[1])

The DSN is a PostgreSQL URL as the Go services take it: an optional
search_path query parameter selects the schema. Each run() is one
transaction on one connection, committed when the function returns and
rolled back when it raises. A database that cannot be reached raises
psycopg2's error, which unreachable() recognises; outages() turns it into
the UNAVAILABLE answer of the Go services.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
import urllib.parse
from typing import Any, Awaitable, Callable, Optional, TypeVar

try:  # Debian's python3-psycopg2; only the PostgreSQL store needs it
    import psycopg2
    import psycopg2.extensions
    import psycopg2.pool
except ImportError:  # pragma: no cover
    psycopg2 = None  # type: ignore[assignment]

from streamgate_service import DETAIL_REASON, Code, Context, Request, SocketError

T = TypeVar("T")

#: As many connections as the Go services open at most.
MAX_CONNS = 16
#: Bounds a connection attempt, so an unreachable host fails fast.
CONNECT_TIMEOUT_S = 5
#: How long a caller is told to wait after an outage (actions.retryAfterMs).
RETRY_AFTER_MS = 1000

log = logging.getLogger("shop.pgdb")


def libpq_dsn(url: str) -> str:
    """The URL as libpq takes it: search_path (pgx's run-time parameter,
    which libpq's URLs do not know) becomes options=-c search_path=…, and
    a connect timeout is set unless the URL has one."""
    if psycopg2 is None:
        raise RuntimeError("the PostgreSQL store needs psycopg2 (Debian: python3-psycopg2)")
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("postgres", "postgresql"):
        raise ValueError("want a postgres:// URL")
    q = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    extra: dict[str, Any] = {}
    rest = []
    for k, v in q:
        if k == "search_path":
            extra["options"] = "-c search_path=" + v.replace("\\", "\\\\").replace(" ", "\\ ")
        else:
            rest.append((k, v))
    if not any(k == "connect_timeout" for k, _ in rest):
        extra["connect_timeout"] = CONNECT_TIMEOUT_S
    base = urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, urllib.parse.urlencode(rest), u.fragment))
    return psycopg2.extensions.make_dsn(base, **extra)


def unreachable(err: BaseException) -> bool:
    """sqldb.IsUnreachable: the server cannot be reached now (a failed
    connect, a cut connection), not a fault of the request or the data.
    psycopg2 says so with an OperationalError the server did not send (no
    SQLSTATE) or an InterfaceError (a connection already closed)."""
    if psycopg2 is None:
        return False
    e: Optional[BaseException] = err
    while e is not None:
        if isinstance(e, psycopg2.InterfaceError):
            return True
        if isinstance(e, psycopg2.OperationalError) and getattr(e, "pgcode", None) is None:
            return True
        e = e.__cause__ or e.__context__
    return False


def unavailable() -> SocketError:
    """The answer to a request the database's outage stopped: UNAVAILABLE,
    reason database_unavailable, with a retry hint and no cause."""
    return SocketError(Code.UNAVAILABLE, "the service's database is unavailable; try again later",
                       {DETAIL_REASON: "database_unavailable", "retry_after_ms": RETRY_AFTER_MS})


Handler = Callable[[Request, Context], Awaitable[Any]]


def outages(handler: Handler) -> Handler:
    """actions.outagesUnavailable: the handler's database outages are
    answered UNAVAILABLE (the cause logged by the runtime, never sent);
    other errors pass unchanged."""

    @functools.wraps(handler)
    async def run(req: Request, ctx: Context) -> Any:
        try:
            return await handler(req, ctx)
        except SocketError:
            raise
        except Exception as err:
            if unreachable(err):
                raise unavailable() from err
            raise

    return run


class Database:
    """A pool of connections to one PostgreSQL database, used from a
    thread pool of the same size."""

    def __init__(self, dsn: str) -> None:
        if psycopg2 is None:
            raise RuntimeError("the PostgreSQL store needs psycopg2 (Debian: python3-psycopg2)")
        self._pool = psycopg2.pool.ThreadedConnectionPool(0, MAX_CONNS, dsn)
        self._threads = concurrent.futures.ThreadPoolExecutor(MAX_CONNS, thread_name_prefix="pg")
        self._closed = threading.Event()

    @classmethod
    async def open(cls, url: str) -> "Database":
        """Opens the database at url and checks that it answers (as
        sqldb.Open pings); raises when it cannot be reached."""
        db = cls(libpq_dsn(url))
        try:
            await db.run(lambda cur: cur.execute("SELECT 1"))
        except BaseException:
            db.close()
            raise
        return db

    def _tx(self, fn: Callable[[Any], T]) -> T:
        conn = self._pool.getconn()
        broken = False
        try:
            with conn.cursor() as cur:
                result = fn(cur)
            conn.commit()
            return result
        except BaseException:
            try:
                if conn.closed:
                    broken = True
                else:
                    conn.rollback()
            except psycopg2.Error:
                broken = True
            raise
        finally:
            self._pool.putconn(conn, close=broken or bool(conn.closed) or self._closed.is_set())

    async def run(self, fn: Callable[[Any], T]) -> T:
        """Runs fn(cursor) in one transaction on a pool thread: committed
        when fn returns, rolled back when it raises (its error raised)."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._tx, fn)

    async def migrate(self, name: str, statements: list[str]) -> None:
        """sqldb.Migrate: the statements in order, in one transaction."""

        def apply(cur: Any) -> None:
            for s in statements:
                cur.execute(s)

        await self.run(apply)

    def close(self) -> None:
        """Closes the connections; waits for the transactions running."""
        self._closed.set()
        self._threads.shutdown(wait=True)
        self._pool.closeall()
