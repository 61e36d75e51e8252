"""The users service on the Python runtime, a drop-in replacement of the Go
one (services/users): the stack starts it as a child process.

    /usr/bin/python3 services/python/shop/users.py --addr HOST:PORT --key KEY [--store memory|postgres://…]

KEY is the stack's service key: a delegating key named "gateway" with the
role admin. On start it prints "listening on HOST:PORT" (the bound port)
on stdout; logs go to stderr. SIGTERM drains and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout: services/python

from streamgate_service import Key, Server  # noqa: E402

from shop import pgdb  # noqa: E402
from shop.userservice import register  # noqa: E402
from shop.userstore import MemoryStore, PostgresStore, Store  # noqa: E402

log = logging.getLogger("shop.users")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="users.py", description=__doc__.splitlines()[0])
    p.add_argument("--addr", "-addr", required=True, help="HOST:PORT to listen on (port 0 picks one)")
    p.add_argument("--key", "-key", required=True, help="the key callers present (delegating, role admin)")
    p.add_argument("--store", "-store", default="memory", help="memory (default) or a postgres:// URL")
    args = p.parse_args(argv)
    if not args.key:
        p.error("--key is empty")
    if args.store != "memory" and not args.store.startswith(("postgres://", "postgresql://")):
        p.error("--store: want memory or a postgres:// URL")
    return args


async def main(args: argparse.Namespace) -> int:
    db = None
    st: Store
    if args.store == "memory":
        st = MemoryStore()
    else:
        try:
            db = await pgdb.Database.open(args.store)
            st = await PostgresStore.open(db)
        except Exception as err:  # the DSN may carry a password: never logged
            log.error("cannot open the PostgreSQL store (%s)", type(err).__name__)
            if db is not None:
                db.close()
            return 1
    server = Server(name="users", version="python", keys=[Key("gateway", secret=args.key, delegate=True, roles=("admin",))])
    register(server, st)
    host = args.addr.rsplit(":", 1)[0]
    try:
        await server.serve(args.addr, ready=lambda port: print(f"listening on {host}:{port}", flush=True))
    finally:
        if db is not None:
            db.close()
    return 0


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
