"""The example shop's services on the Python runtime (streamgate_service):
drop-in replacements of their Go versions (services/users), with the same
actions, answers, idempotency and PostgreSQL schema.

    /usr/bin/python3 services/python/shop/users.py --addr 127.0.0.1:0 --key KEY [--store memory|postgres://…]
"""
