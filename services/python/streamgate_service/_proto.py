"""The generated socket messages, imported from the repository's gen/python.

`buf generate` writes the Python messages to gen/python/ (beside the Go
ones, checked by CI like them). An installed copy of the package finds them
as the `streamgate.socket.v1` package (pyproject.toml ships gen/python's
`streamgate` package with it); a checkout finds them by adding the
repository's gen/python to sys.path, once, here and nowhere else.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from streamgate.socket.v1 import socket_pb2 as pb
except ImportError:  # a checkout: services/python/streamgate_service/_proto.py
    _GEN = Path(__file__).resolve().parents[3] / "gen" / "python"
    if not (_GEN / "streamgate" / "socket" / "v1" / "socket_pb2.py").is_file():
        raise
    sys.path.append(str(_GEN))
    from streamgate.socket.v1 import socket_pb2 as pb

__all__ = ["pb"]
