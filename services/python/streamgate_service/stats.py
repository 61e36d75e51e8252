"""Per-action counters, as Describe shows them."""

from __future__ import annotations

from typing import Any, Optional

from google.protobuf import duration_pb2

from ._proto import pb

#: Bucket i counts latencies below 2**i microseconds (the last, the rest).
_BUCKETS = 32


def duration(seconds: float) -> Any:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


class ActionStats:
    """One action's counters since the server started."""

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.coalesced = 0
        self.in_flight = 0
        self._total_ns = 0
        self._max_ns = 0
        self._buckets = [0] * _BUCKETS
        self._by_code: dict[str, int] = {}

    def observe(self, ns: int, code: Optional[str]) -> None:
        """Records one handler run and its error code (None: it succeeded)."""
        self.count += 1
        self._total_ns += ns
        self._max_ns = max(self._max_ns, ns)
        self._buckets[min((ns // 1000).bit_length(), _BUCKETS - 1)] += 1
        if code is not None:
            self.errors += 1
            self._by_code[code] = self._by_code.get(code, 0) + 1

    def _quantile(self, q: float) -> int:
        total = sum(self._buckets)
        if total == 0:
            return 0
        rank, seen = int(q * total), 0
        for i, c in enumerate(self._buckets):
            seen += c
            if seen > rank:
                return min((1 << i) * 1000, self._max_ns)
        return self._max_ns

    def proto(self) -> Any:
        out = pb.ActionStats(count=self.count, errors=self.errors, in_flight=self.in_flight, coalesced=self.coalesced)
        for field, ns in (("latency_p50", self._quantile(0.5)), ("latency_p99", self._quantile(0.99)),
                          ("latency_max", self._max_ns), ("latency_mean", self._total_ns // self.count if self.count else 0)):
            getattr(out, field).FromNanoseconds(ns)
        for code, n in self._by_code.items():
            out.errors_by_code[code] = n
        return out
