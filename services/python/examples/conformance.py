"""The conformance fixture of docs/protocol.md §12, on the Python runtime.

    /usr/bin/python3 services/python/examples/conformance.py --addr 127.0.0.1:PORT --key KEY
    streamgate conformance -addr 127.0.0.1:PORT -key KEY

Service "conformance", one delegating key (--key, or STREAMGATE_CONFORMANCE_KEY),
the actions ECHO, SLOW, FAIL, COUNT, PEEK, STATS, PUBLISH and DRAIN.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout: the package beside examples/

from streamgate_service import DETAIL_REASON, Code, check_fields, Context, Key, Request, Server, SocketError  # noqa: E402

#: Bounds SLOW and PEEK, so a typo cannot hold a slot for hours.
MAX_SLEEP_MS = 60_000
#: Bounds one PUBLISH.
MAX_PUBLISH = 100_000


def _int(body: dict[str, Any], field: str) -> int:
    v = body.get(field, 0)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v):
        raise SocketError(Code.INVALID_ARGUMENT, f'invalid body: field "{field}" must be an integer',
                          {"field": field})
    return int(v)


def _ms(req: Request) -> int:
    ms = _int(req.object("ms"), "ms")
    if ms < 0 or ms > MAX_SLEEP_MS:
        raise SocketError(Code.INVALID_ARGUMENT, f"ms is from 0 to {MAX_SLEEP_MS}, not {ms}")
    return ms


class Fixture:
    """The fixture's state: handler runs per PEEK key, counters, cancelled
    SLOWs and the outcomes of keyed COUNTs."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.runs: dict[str, int] = {}
        self.counters: dict[str, int] = {}
        self.cancelled = 0
        self.applied: dict[str, tuple[str, dict[str, Any]]] = {}  # COUNT body and result by idempotency key
        a = server.action
        a("ECHO", read=True, doc="Returns the id, body and meta it was sent.")(self.echo)
        a("SLOW", read=True, doc="Waits ms milliseconds, or until cancelled.")(self.slow)
        a("FAIL", read=True, doc="Answers the error it is asked for.")(self.fail)
        a("COUNT", doc="Adds 1 to a named counter; keyed requests run once.")(self.count)
        a("PEEK", read=True, doc="Counts its handler runs per id, after waiting ms.")(self.peek)
        a("STATS", read=True, doc="Returns runs, counters and cancelled.")(self.stats)
        a("PUBLISH", doc="Publishes count events on a topic.")(self.publish)
        a("DRAIN", doc="Starts the graceful shutdown, as SIGTERM would.")(self.drain)

    async def echo(self, req: Request, ctx: Context) -> Any:
        m = ctx.meta
        return {"id": req.id, "body": req.body, "meta": {
            "api_version": m.api_version, "subject": m.principal.subject, "roles": list(m.principal.roles),
            "idempotency_key": m.idempotency_key, "request_id": m.request_id}}

    async def slow(self, req: Request, ctx: Context) -> Any:
        ms = _ms(req)
        try:
            await asyncio.sleep(ms / 1000)
        except asyncio.CancelledError:  # a cancel frame or the deadline
            self.cancelled += 1
            raise
        return {"slept_ms": ms}

    async def fail(self, req: Request, ctx: Context) -> Any:
        body = req.object("code", "message", "reason")
        code, message, reason = body.get("code"), body.get("message", ""), body.get("reason")
        if not isinstance(code, str) or code not in Code.__members__:
            raise SocketError(Code.INVALID_ARGUMENT, f"code {code!r} is not a standard code")
        raise SocketError(Code(code), str(message), {DETAIL_REASON: reason} if reason else None)

    async def count(self, req: Request, ctx: Context) -> Any:
        name = req.object("name").get("name", "")
        if not isinstance(name, str):
            raise SocketError(Code.INVALID_ARGUMENT, 'invalid body: field "name" must be a string', {"field": "name"})
        key = ctx.meta.idempotency_key
        canonical = json.dumps({"name": name})  # the same request, however it was spaced
        if key:
            applied = self.applied.get(key)
            if applied is not None:
                if applied[0] != canonical:
                    raise SocketError(Code.CONFLICT, f"idempotency key {key!r} was used for another request",
                                      {DETAIL_REASON: "idempotency_key_reused"})
                ctx.mark_replayed()
                return applied[1]
        self.counters[name] = self.counters.get(name, 0) + 1
        result = {"name": name, "value": self.counters[name]}
        if key:
            self.applied[key] = (canonical, result)
        return result

    async def peek(self, req: Request, ctx: Context) -> Any:
        ms = _ms(req)
        self.runs[req.id] = self.runs.get(req.id, 0) + 1
        n = self.runs[req.id]
        await asyncio.sleep(ms / 1000)
        return {"key": req.id, "runs": n}

    async def stats(self, req: Request, ctx: Context) -> Any:
        req.object()
        return {"runs": dict(self.runs), "counters": dict(self.counters), "cancelled": self.cancelled}

    async def publish(self, req: Request, ctx: Context) -> Any:
        body = req.object("topic", "count", "data", "visibility")
        count = _int(body, "count")
        if count < 0 or count > MAX_PUBLISH:
            raise SocketError(Code.INVALID_ARGUMENT, f"count is from 0 to {MAX_PUBLISH}, not {count}")
        topic, vis = body.get("topic", ""), body.get("visibility") or {}
        if not isinstance(topic, str) or not isinstance(vis, dict):
            raise SocketError(Code.INVALID_ARGUMENT, "invalid body: topic is a string, visibility an object")
        check_fields(vis, ("public", "subjects", "roles"))
        for i in range(1, count + 1):
            self.server.publish(topic, {"i": i, "data": body.get("data")}, vis)
        return {"published": count}

    async def drain(self, req: Request, ctx: Context) -> Any:
        req.object()
        # The answer is queued before the drain frame: the drain starts on
        # the loop's next turn, after this request is answered.
        asyncio.get_running_loop().call_soon(self.server.begin_shutdown)
        return {"draining": True}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--addr", "-addr", default="127.0.0.1:0", help="HOST:PORT to listen on")
    p.add_argument("--key", "-key", default=os.environ.get("STREAMGATE_CONFORMANCE_KEY", ""),
                   help="the key K (default: STREAMGATE_CONFORMANCE_KEY)")
    args = p.parse_args()
    if not args.key:
        p.error("a key is required: --key or STREAMGATE_CONFORMANCE_KEY")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = Server(name="conformance", version="python", keys=[Key("conformance", secret=args.key, delegate=True)])
    Fixture(server)
    host = args.addr.rpartition(":")[0]
    # The address on stdout, for whoever started the fixture on port 0.
    asyncio.run(server.serve(args.addr, ready=lambda port: print(f"listening on {host}:{port}", flush=True)))


if __name__ == "__main__":
    main()
