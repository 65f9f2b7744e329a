"""Per-node and per-pipeline execution metrics of the pure runtime (counts and durations in us)."""

from __future__ import annotations

from typing import Any, Dict, List


class _Stat:
    __slots__ = ("count", "ok", "errors", "total_ns", "min_ns", "max_ns")

    def __init__(self) -> None:
        self.count = self.ok = self.errors = self.total_ns = self.max_ns = 0
        self.min_ns = None

    def record(self, ns: int, ok: bool) -> None:
        self.count += 1
        if ok:
            self.ok += 1
        else:
            self.errors += 1
        self.total_ns += ns
        self.min_ns = ns if self.min_ns is None else min(self.min_ns, ns)
        self.max_ns = max(self.max_ns, ns)

    def as_dict(self, count_name: str) -> Dict[str, Any]:
        return {
            count_name: self.count,
            "success_count": self.ok,
            "error_count": self.errors,
            "total_duration_us": self.total_ns / 1000.0,
            "avg_duration_us": self.total_ns / 1000.0 / self.count if self.count else 0.0,
            "min_duration_us": (self.min_ns or 0) / 1000.0,
            "max_duration_us": self.max_ns / 1000.0,
        }


class Metrics:
    """Counters for one pipeline; the schema is shared with the native runtime's ``metrics_json``."""

    def __init__(self, node_ids: List[str], node_types: List[str], enabled: bool):
        self.enabled = enabled
        self._ids = node_ids
        self._types = node_types
        self.reset()

    def reset(self) -> None:
        self.pipeline = _Stat()
        self.nodes = [_Stat() for _ in self._ids]

    def as_dict(self) -> Dict[str, Any]:
        return {
            "enabled": self.enabled,
            "runtime": "python",
            "pipeline": self.pipeline.as_dict("run_count"),
            "nodes": {
                nid: {"node_type": t, **s.as_dict("execution_count")}
                for nid, t, s in zip(self._ids, self._types, self.nodes)
            },
        }
