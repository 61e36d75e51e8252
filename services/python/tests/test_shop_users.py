"""The Python users service (shop/), over real grpc.aio streams, in memory
and (with STREAMGATE_TEST_POSTGRES) on PostgreSQL in a schema of its own:
the contract of the Go service's tests (services/users/*_test.go).
services/python/shop_test.go checks it against the Go service itself."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import urllib.parse
from typing import Any, Optional

import pytest

from socketclient import Stream, details, result, serving
from streamgate_service import Key, Server
from streamgate_service._proto import pb

from shop import gojson, once, pgdb
from shop.userservice import register
from shop.userstore import MemoryStore, PostgresStore, Store

KEY = "users-test-key"
ENV_POSTGRES = "STREAMGATE_TEST_POSTGRES"


class Schema:
    """A fresh schema in the test server, dropped after: other engineers use
    the same database at the same time."""

    def __init__(self, base: str) -> None:
        import psycopg2

        self.base = base
        self.name = "t_py_" + secrets.token_hex(6)
        self._admin = psycopg2.connect(pgdb.libpq_dsn(base))
        self._admin.autocommit = True
        with self._admin.cursor() as cur:
            cur.execute(f"CREATE SCHEMA {self.name}")

    def url(self, host: Optional[str] = None) -> str:
        u = urllib.parse.urlsplit(self.base)
        q = urllib.parse.parse_qsl(u.query) + [("search_path", self.name)]
        netloc = u.netloc if host is None else u.netloc.rsplit("@", 1)[0] + "@" + host if "@" in u.netloc else host
        return urllib.parse.urlunsplit((u.scheme, netloc, u.path, urllib.parse.urlencode(q), ""))

    def drop(self) -> None:
        with self._admin.cursor() as cur:
            cur.execute(f"DROP SCHEMA {self.name} CASCADE")
        self._admin.close()


@pytest.fixture(params=["memory", "postgres"])
def store_kind(request: Any) -> Any:
    if request.param == "postgres" and not os.environ.get(ENV_POSTGRES):
        pytest.skip(f"{ENV_POSTGRES} is unset: skipping the PostgreSQL store")
    return request.param


class Users:
    """A caller of the users service on one stream, acting for principals
    as the gateway does (a delegating key)."""

    def __init__(self, st: Stream) -> None:
        self.st, self.n = st, 0

    async def call(self, who: Optional[tuple[str, ...]], action: str, id: str = "", body: Any = None,
                   key: str = "") -> Any:
        self.n += 1
        meta: dict[str, Any] = {"api_version": "v1", "idempotency_key": key}
        if who is not None:
            meta["principal"] = pb.Principal(subject=who[0], roles=list(who[1:]))
        r = pb.Request(id=self.n, action=action, resource_id=id, meta=pb.Meta(**meta))
        if body is not None:
            r.body_raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        await self.st.send(request=r)
        return await self.st.response(self.n)

    async def ok(self, who: Optional[tuple[str, ...]], action: str, id: str = "", body: Any = None, key: str = "") -> Any:
        return result(await self.call(who, action, id, body, key))

    async def code(self, who: Optional[tuple[str, ...]], action: str, id: str = "", body: Any = None, key: str = "") -> str:
        r = await self.call(who, action, id, body, key)
        return "" if r.ok else r.error.code


ADMIN, ALICE, BOB, ANON = ("root", "admin"), ("alice",), ("bob",), ("anonymous",)


async def open_store(kind: str, s: Optional[Schema]) -> tuple[Store, Optional[pgdb.Database]]:
    if kind == "memory":
        return MemoryStore(), None
    assert s is not None
    db = await pgdb.Database.open(s.url())
    await PostgresStore.open(db)  # migrating twice is harmless
    return await PostgresStore.open(db), db


@pytest.fixture
def pg_schema(store_kind: str) -> Any:
    if store_kind != "postgres":
        yield None
        return
    s = Schema(os.environ[ENV_POSTGRES])
    yield s
    s.drop()


async def users_service(kind: str, s: Optional[Schema]) -> tuple[Server, Optional[pgdb.Database]]:
    st, db = await open_store(kind, s)
    server = Server(name="users", keys=[Key("gateway", secret=KEY, delegate=True, roles=("admin",))])
    register(server, st)
    return server, db


async def test_service(store_kind: str, pg_schema: Optional[Schema]) -> None:
    server, db = await users_service(store_kind, pg_schema)
    try:
        async with serving(server, KEY) as conn:
            u = Users(conn.stream())
            a = await u.ok(ALICE, "CREATE_USER", "", {"name": "  Alice  ", "email": " Alice@Example.COM "})
            assert (a["id"], a["name"], a["email"], a["status"]) == ("alice", "Alice", "alice@example.com", "active")
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", a["created_at"]), a
            assert await u.ok(ALICE, "GET_USER", "alice") == a
            await u.ok(BOB, "CREATE_USER", "", {"id": "bob", "name": "Bob", "email": "bob@example.com", "status": "active"})
            g = await u.ok(ADMIN, "CREATE_USER", "", {"name": "Generated", "email": "gen@example.com"})
            assert re.fullmatch(r"usr_[0-9a-f]{12}", g["id"]), g
            await u.ok(ADMIN, "CREATE_USER", "", {"id": "carol", "name": "Carol", "email": "carol@example.com", "status": "suspended"})

            long = "é" * 201
            dave = ("dave",)
            for who, body, code in [
                (ANON, {"name": "X", "email": "x@example.com"}, "UNAUTHENTICATED"),
                (BOB, {"id": "dave", "name": "X", "email": "x@example.com"}, "PERMISSION_DENIED"),
                (dave, {"name": "X", "email": "x@example.com", "status": "suspended"}, "PERMISSION_DENIED"),
                (BOB, {"name": "X", "email": "x@example.com"}, "ALREADY_EXISTS"),
                (ADMIN, {"id": "alice", "name": "X", "email": "x@example.com"}, "ALREADY_EXISTS"),
                (ADMIN, {"name": "X", "email": "ALICE@example.com"}, "ALREADY_EXISTS"),
                (dave, {"email": "x@example.com"}, "INVALID_ARGUMENT"),
                (dave, {"name": "   ", "email": "x@example.com"}, "INVALID_ARGUMENT"),
                (dave, {"name": long, "email": "x@example.com"}, "INVALID_ARGUMENT"),
                (dave, {"name": "X"}, "INVALID_ARGUMENT"),
                (dave, {"name": "X", "email": "example.com"}, "INVALID_ARGUMENT"),
                (dave, {"name": "X", "email": "@example.com"}, "INVALID_ARGUMENT"),
                (dave, {"name": "X", "email": "x@"}, "INVALID_ARGUMENT"),
                (ADMIN, {"name": "X", "email": "x@example.com", "status": "banned"}, "INVALID_ARGUMENT"),
                (ADMIN, {"id": "a b", "name": "X", "email": "x@example.com"}, "INVALID_ARGUMENT"),
                (dave, {"name": "X", "email": "x@example.com", "role": "admin"}, "INVALID_ARGUMENT"),
            ]:
                assert await u.code(who, "CREATE_USER", "", body) == code, body
            r = await u.call(ADMIN, "CREATE_USER", "", {"name": "X", "email": "ALICE@example.com"})
            assert r.error.message == 'a user with email "alice@example.com" already exists'
            assert details(r) == {"field": "email", "email": "alice@example.com"}
            d = await u.ok(dave, "CREATE_USER", "", {"name": long[2:], "email": "x@example.com"})
            assert d["id"] == "dave"

            for who, id, code in [(ALICE, "alice", ""), (ADMIN, "bob", ""), (ALICE, "bob", "NOT_FOUND"),
                                  (ALICE, "ghost", "NOT_FOUND"), (ADMIN, "ghost", "NOT_FOUND"),
                                  (ANON, "anonymous", "NOT_FOUND"), (ADMIN, "", "INVALID_ARGUMENT")]:
                assert await u.code(who, "GET_USER", id) == code, (who, id)

            # LIST_USERS: admin only, paged in id order, filtered.
            assert await u.code(ALICE, "LIST_USERS") == "PERMISSION_DENIED"
            assert await u.code(ADMIN, "LIST_USERS", "", {"page_size": 1001}) == "INVALID_ARGUMENT"
            assert await u.code(ADMIN, "LIST_USERS", "", {"status": "gone"}) == "INVALID_ARGUMENT"
            ids, token, pages = [], "", 0
            while True:
                p = await u.ok(ADMIN, "LIST_USERS", "", {"page_size": 2, "page_token": token})
                assert len(p["items"]) <= 2 and pages < 5, p
                ids += [x["id"] for x in p["items"]]
                pages += 1
                token = p.get("next_page_token", "")
                if not token:
                    break
            assert ids == sorted(["alice", "bob", "carol", "dave", g["id"]])
            p = await u.ok(ADMIN, "LIST_USERS")
            assert len(p["items"]) == 5 and "next_page_token" not in p
            for body, want in [({"status": "suspended"}, ["carol"]), ({"email": " BOB@example.com"}, ["bob"]),
                               ({"email": "bob@example.com", "status": "suspended"}, [])]:
                assert [x["id"] for x in (await u.ok(ADMIN, "LIST_USERS", "", body))["items"]] == want
            r = await u.call(ADMIN, "LIST_USERS", "", {"email": "nobody@example.com"})
            assert r.result_raw == b'{"items":[]}'

            for who, id, body, code in [
                (ALICE, "bob", {"name": "X"}, "NOT_FOUND"),
                (ALICE, "alice", {"status": "active"}, "PERMISSION_DENIED"),
                (ALICE, "alice", {"email": "Bob@Example.com"}, "ALREADY_EXISTS"),
                (ALICE, "alice", {"name": " "}, "INVALID_ARGUMENT"),
                (ALICE, "alice", {"email": "alice"}, "INVALID_ARGUMENT"),
                (ADMIN, "alice", {"status": "gone"}, "INVALID_ARGUMENT"),
                (ADMIN, "ghost", {"name": "X"}, "NOT_FOUND"),
                (ALICE, "alice", {"id": "x"}, "INVALID_ARGUMENT"),
            ]:
                assert await u.code(who, "UPDATE_USER", id, body) == code, (id, body)
            x = await u.ok(ALICE, "UPDATE_USER", "alice", {"email": "ALICE2@example.com"})
            assert (x["name"], x["email"], x["status"]) == ("Alice", "alice2@example.com", "active")
            x = await u.ok(ALICE, "UPDATE_USER", "alice", {"name": "Alice B."})
            assert (x["name"], x["email"]) == ("Alice B.", "alice2@example.com")
            x = await u.ok(ADMIN, "UPDATE_USER", "bob", {"status": "suspended"})
            assert (x["status"], x["name"]) == ("suspended", "Bob")

            r = await u.call(ALICE, "CHECK_PURCHASABLE", "alice", b"{}")
            assert r.result_raw == b'{"purchasable":true,"reason":""}'
            assert await u.ok(ADMIN, "CHECK_PURCHASABLE", "bob") == {"purchasable": False, "reason": "suspended"}
            for who, id in [(ANON, "alice"), (ALICE, "bob"), (ALICE, "ghost")]:
                assert await u.code(who, "CHECK_PURCHASABLE", id) == "NOT_FOUND"
            assert await u.ok(ALICE, "REQUIRE_PURCHASABLE", "alice") == {"purchasable": True, "reason": ""}
            for id in ("bob", "carol"):
                r = await u.call(ADMIN, "REQUIRE_PURCHASABLE", id)
                assert r.error.code == "FAILED_PRECONDITION"
                assert r.error.message == f'user "{id}" cannot purchase: suspended'
                assert details(r) == {"reason": "user_suspended", "user_id": id}
            r = await u.call(ALICE, "REQUIRE_PURCHASABLE", "ghost")
            assert (r.error.code, r.error.message) == ("NOT_FOUND", 'user "ghost" not found')
            assert await u.code(ALICE, "REQUIRE_PURCHASABLE", "") == "INVALID_ARGUMENT"

            assert await u.code(BOB, "DELETE_USER", "bob") == "PERMISSION_DENIED"
            gone = await u.ok(ADMIN, "DELETE_USER", "bob")
            assert (gone["id"], gone["email"]) == ("bob", "bob@example.com")
            assert await u.code(ADMIN, "DELETE_USER", "bob") == "NOT_FOUND"
            assert await u.code(BOB, "GET_USER", "bob") == "NOT_FOUND"
            await u.ok(BOB, "CREATE_USER", "", {"name": "Bob", "email": "bob@example.com"})
    finally:
        if db is not None:
            db.close()


async def test_same_key_writes_apply_once(store_kind: str, pg_schema: Optional[Schema]) -> None:
    server, db = await users_service(store_kind, pg_schema)
    try:
        async with serving(server, KEY) as conn:
            callers = [Users(conn.stream()) for _ in range(8)]
            create = {"name": "Kim", "email": "kim@example.com"}
            rs = await asyncio.gather(*(c.call(ADMIN, "CREATE_USER", "", create, key="h1:CREATE_USER") for c in callers))
            rs.append(await callers[0].call(ADMIN, "CREATE_USER", "", create, key="h1:CREATE_USER"))
            assert all(r.ok for r in rs), [r.error for r in rs]
            assert len({r.result_raw for r in rs}) == 1
            assert sum(not r.replayed for r in rs) == 1
            u = callers[0]
            page = await u.ok(ADMIN, "LIST_USERS")
            assert len(page["items"]) == 1
            id = page["items"][0]["id"]

            r = await u.call(ADMIN, "CREATE_USER", "", {"name": "Other", "email": "other@example.com"}, key="h1:CREATE_USER")
            assert (r.error.code, details(r).get("reason")) == ("CONFLICT", "idempotency_key_reused")

            await u.ok(ADMIN, "UPDATE_USER", id, {"name": "Kim B"}, key="h2:UPDATE_USER")
            await u.ok(ADMIN, "UPDATE_USER", id, {"name": "Kim C"})
            r = await u.call(ADMIN, "UPDATE_USER", id, {"name": "Kim B"}, key="h2:UPDATE_USER")
            assert r.ok and r.replayed
            assert (await u.ok(ADMIN, "GET_USER", id))["name"] == "Kim C"

            gone = await u.call(ADMIN, "DELETE_USER", id, key="h3:DELETE_USER")
            again = await u.call(ADMIN, "DELETE_USER", id, key="h3:DELETE_USER")
            assert gone.ok and again.ok and again.replayed and again.result_raw == gone.result_raw

            for i, who in enumerate(["ann", "bob"]):
                await u.ok((who,), "CREATE_USER", "", {"name": who, "email": f"{who}{i}@example.com"}, key="shared")
    finally:
        if db is not None:
            db.close()


async def test_concurrent_sign_up(store_kind: str, pg_schema: Optional[Schema]) -> None:
    server, db = await users_service(store_kind, pg_schema)
    try:
        async with serving(server, KEY) as conn:
            callers = [Users(conn.stream()) for _ in range(20)]
            codes = await asyncio.gather(*(c.code((f"jwt-{i:02d}",), "CREATE_USER", "", {"name": "Same", "email": "Same@Example.com"})
                                           for i, c in enumerate(callers)))
            assert sorted(codes) == [""] + ["ALREADY_EXISTS"] * 19, codes
            page = await callers[0].ok(ADMIN, "LIST_USERS", "", {"email": "same@example.com"})
            assert len(page["items"]) == 1
    finally:
        if db is not None:
            db.close()


async def test_others_look_missing(store_kind: str, pg_schema: Optional[Schema]) -> None:
    server, db = await users_service(store_kind, pg_schema)
    try:
        async with serving(server, KEY) as conn:
            u = Users(conn.stream())
            for body in ({"id": "bob", "name": "Bob", "email": "bob@example.com"},
                         {"id": "carol", "name": "Carol", "email": "carol@example.com", "status": "suspended"}):
                await u.ok(ADMIN, "CREATE_USER", "", body)

            async def shape(who: tuple[str, ...], action: str, id: str, body: Any) -> Any:
                r = await u.call(who, action, id, body)
                return (r.ok, r.error.code, r.error.message.replace(id, "ID"), details(r))

            for who in (ALICE, ANON):
                for action, body in [("GET_USER", None), ("UPDATE_USER", {"name": "X"}), ("DELETE_USER", None),
                                     ("CHECK_PURCHASABLE", None), ("REQUIRE_PURCHASABLE", None)]:
                    want = await shape(who, action, "ghost", body)
                    assert want[1] == "NOT_FOUND"
                    for other in ("bob", "carol"):
                        assert await shape(who, action, other, body) == want, (who, action, other)
            assert (await u.ok(ADMIN, "GET_USER", "bob"))["name"] == "Bob"
    finally:
        if db is not None:
            db.close()


async def test_describe_kinds() -> None:
    server = Server(name="users", keys=[Key("gateway", secret=KEY, delegate=True)])
    register(server, MemoryStore())
    async with serving(server, KEY) as conn:
        import grpc

        d = await conn.channel.unary_unary("/streamgate.socket.v1.SocketService/Describe",
                                           request_serializer=pb.DescribeRequest.SerializeToString,
                                           response_deserializer=pb.DescribeResponse.FromString)(
            pb.DescribeRequest(), metadata=(("authorization", f"Bearer {KEY}"),))
        kinds = {}
        for a in d.actions:
            assert a.doc
            kinds[a.name] = "read" if a.kind == pb.ACTION_KIND_READ else "idempotent write" if a.idempotent else "write"
        assert kinds == {"GET_USER": "read", "LIST_USERS": "read", "CHECK_PURCHASABLE": "read",
                         "REQUIRE_PURCHASABLE": "read", "CREATE_USER": "write", "UPDATE_USER": "idempotent write",
                         "DELETE_USER": "idempotent write"}
        del grpc


# Go's JSON, as the Go service decodes and fingerprints bodies.

@pytest.mark.parametrize("raw,want", [
    (b'{"b":1,"a":[1.50,"<&>"]}', b'{"a":[1.50,"\\u003c\\u0026\\u003e"],"b":1}'),
    (b'  {"a":"\\ud800"} trailing', '{"a":"\ufffd"}'.encode()),
    (b"not json", b"not json"),
    (b"", b""),
    (b'\t"x\\u0001\\n"\n', b'"x\\u0001\\n"'),
])
def test_canonical_bodies(raw: bytes, want: bytes) -> None:
    assert gojson.canonical(raw) == want


def test_fingerprint_is_gos() -> None:
    # once.Fingerprint's definition; shop_test.go checks Go and Python share keys.
    from streamgate_service import Request

    req = Request("CREATE_USER", "", b'{"name": "Kim", "email": "kim@example.com"}')
    body = b'{"email":"kim@example.com","name":"Kim"}'
    import hashlib

    want = hashlib.sha256(b"11:CREATE_USER" + b"0:" + f"{len(body)}:".encode() + body).hexdigest()
    assert once.fingerprint(req) == want


@pytest.mark.parametrize("raw,message,det", [
    (b'{"name": 5}', 'invalid body: field "name" must be string, got number', {"field": "name", "offset": 10}),
    (b'{"page_size": 1.5}', None, None),
    (b'[1]', 'invalid body: field "" must be users.CreateInput, got array', {"field": "", "offset": 1}),
    (b'{"role": 1, "name": 5}', 'invalid body: unknown field "role"', {"field": "role", "reason": "unknown_field"}),
    (b'{} {}', "invalid JSON body: unexpected data after the value at offset 4", None),
])
def test_body_errors(raw: bytes, message: Optional[str], det: Any) -> None:
    from shop.userservice import CREATE_INPUT, LIST_INPUT
    from streamgate_service import SocketError

    st = LIST_INPUT if b"page_size" in raw else CREATE_INPUT
    with pytest.raises(SocketError) as e:
        gojson.decode_body(raw, st)
    assert e.value.code == "INVALID_ARGUMENT"
    if message is not None:
        assert e.value.message == message
        assert e.value.details == det


def test_bodies_decode_as_go_does() -> None:
    from shop.userservice import CREATE_INPUT, PATCH

    assert gojson.decode_body(b'{"NAME": "x", "Email": null}', CREATE_INPUT) == {"id": "", "name": "x", "email": "", "status": ""}
    assert gojson.decode_body(b"null", PATCH) == {"name": None, "email": None, "status": None}
    assert gojson.decode_body(b'{"name": null, "email": "a"}', PATCH) == {"name": None, "email": "a", "status": None}


class Forwarder:
    """A loopback TCP forwarder to the database server that can be taken
    down: its port closed and its connections cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.writers: list[asyncio.StreamWriter] = []
        self.server: Optional[asyncio.base_events.Server] = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    async def _conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            tr, tw = await asyncio.open_connection(*self.target)
        except OSError:
            w.close()
            return
        self.writers += [w, tw]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(r, tw), pipe(tr, w))

    async def down(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()


async def test_database_outage_is_unavailable() -> None:
    """With the database unreachable, callers get UNAVAILABLE reason
    database_unavailable with a retry hint (the Go services' answer), never
    INTERNAL, and no cause in the message."""
    base = os.environ.get(ENV_POSTGRES)
    if not base:
        pytest.skip(f"{ENV_POSTGRES} is unset")
    s = Schema(base)
    try:
        u0 = urllib.parse.urlsplit(base)
        fw = Forwarder((u0.hostname or "127.0.0.1", u0.port or 5432))
        addr = await fw.start()
        db = await pgdb.Database.open(s.url(host=addr))
        server = Server(name="users", keys=[Key("gateway", secret=KEY, delegate=True, roles=("admin",))])
        register(server, await PostgresStore.open(db))
        try:
            async with serving(server, KEY) as conn:
                u = Users(conn.stream())
                await u.ok(ADMIN, "CREATE_USER", "", {"id": "ann", "name": "Ann", "email": "ann@example.com"})
                await fw.down()
                for action, body, key in [("GET_USER", None, ""), ("LIST_USERS", None, ""), ("UPDATE_USER", {"name": "Anne"}, ""),
                                          ("DELETE_USER", None, ""), ("CHECK_PURCHASABLE", None, ""),
                                          ("CREATE_USER", {"name": "Bo", "email": "bo@example.com"}, "k1:CREATE_USER")]:
                    r = await u.call(ADMIN, action, "ann", body, key=key)
                    assert r.error.code == "UNAVAILABLE", (action, r)
                    assert details(r) == {"reason": "database_unavailable", "retry_after_ms": 1000}, action
                    low = r.error.message.lower()
                    for leak in ("127.0.0.1", "dial", "sql", "connection", "tcp", "server"):
                        assert leak not in low, (action, r.error.message)
        finally:
            db.close()
    finally:
        s.drop()
