"""The users service (services/users in Go), action for action: accounts
with a name, a unique email and a status, and the CHECK_PURCHASABLE and
REQUIRE_PURCHASABLE steps the gateway runs before an order is paid.

    server = Server(name="users", keys=[...])
    register(server, MemoryStore())   # or await PostgresStore.open(db)

The caller is the request's principal; "admin" is the role that may act on
any user. Everyone else acts only on the user whose id is their subject,
and only once signed in (a subject other than "" and "anonymous"):

    GET_USER id             admin, or the user itself
    LIST_USERS              admin; {status?, email?, page_size?, page_token?} → {items, next_page_token?}
    CREATE_USER             any signed-in caller; {id?, name, email, status?} → user
    UPDATE_USER id          admin, or the user itself without status; {name?, email?, status?} → user
    DELETE_USER id          admin; returns the deleted user
    CHECK_PURCHASABLE id    admin, or the user itself; → {purchasable, reason}
    REQUIRE_PURCHASABLE id  admin, or the user itself; FAILED_PRECONDITION unless purchasable

Under an idempotency key, CREATE_USER, UPDATE_USER and DELETE_USER apply
once (once.keyed). Another user's account answers exactly like a missing
one: NOT_FOUND "user \\"ID\\" not found". The service publishes no events
(nor does the Go one).
"""

from __future__ import annotations

import secrets
from typing import Any, Optional

from streamgate_service import Code, Context, Principal, Request, Server, SocketError

from . import once
from .gojson import Struct, decode_body, is_print, is_space, lower, quote, trim_space
from .pgdb import outages
from .userstore import ACTIVE, SUSPENDED, EmailTaken, IDTaken, NotFound, Patch, Query, Store, User, now

MAX_NAME = 200
MAX_EMAIL = 254
MAX_ID = 256
#: Starts the ids made for admins who give none.
ID_PREFIX = "usr_"
ROLE_ADMIN = "admin"
ANONYMOUS = "anonymous"
#: paging.Default and paging.Max.
PAGE_DEFAULT, PAGE_MAX = 50, 1000

# The Go bodies, as socket.Typed decodes them.
NO_BODY = Struct("struct {}", ())
CREATE_INPUT = Struct("users.CreateInput", (("id", "string"), ("name", "string"), ("email", "string"), ("status", "string")))
PATCH = Struct("users.Patch", (("name", "*string"), ("email", "*string"), ("status", "*string")))
LIST_INPUT = Struct("users.ListInput", (("status", "string"), ("email", "string"), ("page_size", "int"), ("page_token", "string")))

DOCS = {
    "GET_USER": "Returns a user. Admins read any; others only their own (another user is NOT_FOUND, like a missing one).",
    "LIST_USERS": "Lists users in id order, filtered by status and email, paged by page_size (default 50, max 1000) and page_token. Admin only.",
    "CREATE_USER": "Creates a user {id?, name, email, status?}. Signed-in callers create their own (id = subject); admins any id and status. ALREADY_EXISTS when the id or email is taken.",
    "UPDATE_USER": "Changes a user's name, email or status (partial). Others than admins: only their own user (another is NOT_FOUND), never the status.",
    "DELETE_USER": "Deletes a user and returns it. Admin only (another user is NOT_FOUND for others).",
    "CHECK_PURCHASABLE": 'Reports whether a user may buy: {"purchasable": bool, "reason": "" | "suspended"}. The user itself or an admin; another user is NOT_FOUND, like a missing one.',
    "REQUIRE_PURCHASABLE": 'Fails unless a user may buy: FAILED_PRECONDITION with details {"reason": "user_suspended", "user_id"} when suspended, NOT_FOUND when unknown; otherwise CHECK_PURCHASABLE\'s result. The user itself or an admin (another user is NOT_FOUND); a step that stops a purchase.',
}


def register(server: Server, st: Store) -> None:
    """Adds the users actions to server, backed by st."""
    s = _Service(st)
    h = server.handle
    h("GET_USER", outages(s.get), read=True, doc=DOCS["GET_USER"])
    h("LIST_USERS", outages(_admin_only("list users", s.list)), read=True, doc=DOCS["LIST_USERS"])
    h("CREATE_USER", outages(once.keyed(st, s.create)), doc=DOCS["CREATE_USER"])
    h("UPDATE_USER", outages(once.keyed(st, s.update)), idempotent=True, doc=DOCS["UPDATE_USER"])
    h("DELETE_USER", outages(once.keyed(st, s.delete)), idempotent=True, doc=DOCS["DELETE_USER"])
    h("CHECK_PURCHASABLE", outages(s.check_purchasable), read=True, doc=DOCS["CHECK_PURCHASABLE"])
    h("REQUIRE_PURCHASABLE", outages(s.require_purchasable), read=True, doc=DOCS["REQUIRE_PURCHASABLE"])


def _admin_only(what: str, handler: Any) -> Any:
    """access.AdminOnly: PERMISSION_DENIED before the body is decoded."""

    async def run(req: Request, ctx: Context) -> Any:
        if not ctx.meta.principal.has_role(ROLE_ADMIN):
            raise SocketError(Code.PERMISSION_DENIED, f"only admins may {what}")
        return await handler(req, ctx)

    return run


class _Service:
    def __init__(self, st: Store) -> None:
        self.st = st

    async def get(self, req: Request, ctx: Context) -> Any:
        decode_body(req.raw, NO_BODY)
        _require_id(req.id)
        _visible(ctx, req.id)
        return (await self._get(req.id)).json()

    async def _get(self, id: str) -> User:
        try:
            return await self.st.get(id)
        except NotFound:
            raise _not_found(id) from None

    async def list(self, req: Request, ctx: Context) -> Any:
        body = decode_body(req.raw, LIST_INPUT)
        n = body["page_size"]
        if n < 0 or n > PAGE_MAX:
            raise SocketError(Code.INVALID_ARGUMENT, f"page_size must be between 0 and {PAGE_MAX}, got {n}",
                              {"field": "page_size"})
        size = n or PAGE_DEFAULT
        if body["status"]:
            _valid_status(body["status"])
        q = Query(status=body["status"], email=_normalize_email(body["email"]), after=body["page_token"], limit=size + 1)
        items = await self.st.list(q)
        page: dict[str, Any] = {"items": [u.json() for u in items[:size]]}
        if len(items) > size:
            page["next_page_token"] = items[size - 1].id
        return page

    async def create(self, req: Request, ctx: Context, held: Optional[once.Held]) -> Any:
        body = decode_body(req.raw, CREATE_INPUT)
        p = ctx.meta.principal
        if not _signed_in(p):
            raise SocketError(Code.UNAUTHENTICATED, "sign in to create a user")
        admin = p.has_role(ROLE_ADMIN)
        id, generated = body["id"], False
        if not id and admin:
            id, generated = _new_id(), True
        elif not id:
            id = p.subject
        elif not admin and id != p.subject:
            raise SocketError(Code.PERMISSION_DENIED, f"you may create only your own user, id {quote(p.subject)}")
        _valid_id(id)
        name = _valid_name(body["name"])
        email = _valid_email(body["email"])
        status = ACTIVE
        if body["status"]:
            _valid_status(body["status"])
            if body["status"] == SUSPENDED and not admin:
                raise SocketError(Code.PERMISSION_DENIED, "only admins may create a suspended user")
            status = body["status"]
        u = User(id, name, email, status, now())
        for attempt in range(3):
            try:
                await self.st.create(u, held)
                return u.json()
            except IDTaken:
                if not generated or attempt == 2:
                    raise _store_error(IDTaken(), u.id, u.email) from None
                u = User(_new_id(), u.name, u.email, u.status, u.created)
            except (NotFound, EmailTaken) as err:
                raise _store_error(err, u.id, u.email) from None
        raise AssertionError("unreachable")

    async def update(self, req: Request, ctx: Context, held: Optional[once.Held]) -> Any:
        body = decode_body(req.raw, PATCH)
        id = req.id
        _require_id(id)
        _visible(ctx, id)
        if not ctx.meta.principal.has_role(ROLE_ADMIN) and body["status"] is not None:
            raise SocketError(Code.PERMISSION_DENIED, "only admins may change a user's status")
        name, email, status = body["name"], body["email"], body["status"]
        if name is not None:
            name = _valid_name(name)
        if email is not None:
            email = _valid_email(email)
        if status is not None:
            _valid_status(status)
        try:
            u = await self.st.update(id, Patch(name=name, email=email, status=status), held)
        except (NotFound, IDTaken, EmailTaken) as err:
            raise _store_error(err, id, email or "") from None
        return u.json()

    async def delete(self, req: Request, ctx: Context, held: Optional[once.Held]) -> Any:
        decode_body(req.raw, NO_BODY)
        id = req.id
        _require_id(id)
        _visible(ctx, id)
        if not ctx.meta.principal.has_role(ROLE_ADMIN):
            raise SocketError(Code.PERMISSION_DENIED, "only admins may delete users")
        try:
            u = await self.st.delete(id, held)
        except NotFound:
            raise _not_found(id) from None
        return u.json()

    async def _check(self, req: Request, ctx: Context) -> dict[str, Any]:
        decode_body(req.raw, NO_BODY)
        _require_id(req.id)
        _visible(ctx, req.id)
        u = await self._get(req.id)
        if u.status == SUSPENDED:
            return {"purchasable": False, "reason": SUSPENDED}
        return {"purchasable": True, "reason": ""}

    async def check_purchasable(self, req: Request, ctx: Context) -> Any:
        return await self._check(req, ctx)

    async def require_purchasable(self, req: Request, ctx: Context) -> Any:
        p = await self._check(req, ctx)
        if p["purchasable"]:
            return p
        raise SocketError(Code.FAILED_PRECONDITION, f"user {quote(req.id)} cannot purchase: {p['reason']}",
                          {"reason": "user_" + p["reason"], "user_id": req.id})


def _new_id() -> str:
    """ids.New("usr_"): the prefix and 12 random hex digits."""
    return ID_PREFIX + secrets.token_hex(6)


def _signed_in(p: Principal) -> bool:
    return p.subject not in ("", ANONYMOUS)


def _visible(ctx: Context, id: str) -> None:
    """Refuses a caller who may not see user id (neither the user itself
    nor an admin) with the error a missing user gets."""
    p = ctx.meta.principal
    if not p.has_role(ROLE_ADMIN) and not (_signed_in(p) and p.subject == id):
        raise _not_found(id)


def _not_found(id: str) -> SocketError:
    """The one answer for a user that is missing or not the caller's to see."""
    return SocketError(Code.NOT_FOUND, f"user {quote(id)} not found")


def _store_error(err: Exception, id: str, email: str) -> SocketError:
    if isinstance(err, NotFound):
        return _not_found(id)
    if isinstance(err, IDTaken):
        return SocketError(Code.ALREADY_EXISTS, f"user {quote(id)} already exists", {"field": "id", "id": id})
    return SocketError(Code.ALREADY_EXISTS, f"a user with email {quote(email)} already exists",
                       {"field": "email", "email": email})


def _invalid(field: str, message: str) -> SocketError:
    return SocketError(Code.INVALID_ARGUMENT, f"{field} {message}", {"field": field})


def _require_id(id: str) -> None:
    if not id:
        raise _invalid("id", "is required")


def _valid_id(id: str) -> None:
    """1 to 256 bytes of printable UTF-8 without spaces, so JWT subjects
    such as "auth0|42" fit."""
    if not id or len(id.encode("utf-8", "surrogatepass")) > MAX_ID:
        raise _invalid("id", f"must be 1 to {MAX_ID} bytes")
    if any(is_space(c) or not is_print(c) for c in id):
        raise _invalid("id", "must be printable, without spaces")


def _valid_name(name: str) -> str:
    name = trim_space(name)
    if not 0 < len(name) <= MAX_NAME:
        raise _invalid("name", f"is required, 1 to {MAX_NAME} characters")
    return name


def _normalize_email(email: str) -> str:
    return lower(trim_space(email))


def _valid_email(email: str) -> str:
    """Something on both sides of an "@" and no spaces; in lower case."""
    email = _normalize_email(email)
    if not email:
        raise _invalid("email", "is required")
    at = email.rfind("@")
    if at <= 0 or at == len(email) - 1 or len(email.encode("utf-8", "surrogatepass")) > MAX_EMAIL \
            or any(is_space(c) for c in email):
        raise _invalid("email", f"must be an address like name@example.com, at most {MAX_EMAIL} bytes")
    return email


def _valid_status(status: str) -> None:
    if status not in (ACTIVE, SUSPENDED):
        raise _invalid("status", f'must be "{ACTIVE}" or "{SUSPENDED}"')
