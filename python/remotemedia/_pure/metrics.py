"""Metrics of the pure-Python runtime, in the same schema as the native engine's (docs/metrics.md).

Latencies go into a log-linear histogram with 3 significant digits, the same resolution as the
engine's HDR histograms, so percentiles mean the same thing on both runtimes.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional

_SUB_BUCKET_BITS = 11  # 2048 sub-buckets per power of two: 3 significant decimal digits


def _bucket(ns: int) -> int:
    """The histogram key for ``ns``: values below 2048 exactly, above that the top 11 bits."""
    if ns < (1 << _SUB_BUCKET_BITS):
        return ns
    shift = ns.bit_length() - _SUB_BUCKET_BITS
    return ((ns >> shift) << shift) + (1 << shift) - 1  # highest value of the bucket, as HDR reports


class _Stat:
    """One node's (or the pipeline's) counts, durations and latency histogram."""

    __slots__ = ("count", "ok", "errors", "samples", "total_ns", "min_ns", "max_ns", "hist")

    def __init__(self) -> None:
        self.count = self.ok = self.errors = self.samples = self.total_ns = self.max_ns = 0
        self.min_ns: Optional[int] = None
        self.hist: Dict[int, int] = {}

    def record(self, ns: int, ok: bool, samples: int = 0) -> None:
        ns = max(int(ns), 1)
        self.count += 1
        if ok:
            self.ok += 1
        else:
            self.errors += 1
        self.samples += samples
        self.total_ns += ns
        self.min_ns = ns if self.min_ns is None else min(self.min_ns, ns)
        self.max_ns = max(self.max_ns, ns)
        key = _bucket(ns)
        self.hist[key] = self.hist.get(key, 0) + 1

    def quantile_us(self, q: float) -> float:
        if not self.count:
            return 0.0
        # HDR's rule: the smallest recorded value with at least q of all counts at or below it.
        target = max(1, int(q * self.count + 0.999999999))
        seen = 0
        for key in sorted(self.hist):
            seen += self.hist[key]
            if seen >= target:
                # A bucket's top can pass the exact extremes: clamp to them, as the engine does.
                return min(max(key, self.min_ns or 0), self.max_ns) / 1000.0
        return self.max_ns / 1000.0


def peak_memory_bytes() -> int:
    """The process's peak resident set size (Linux VmHWM, else getrusage), or 0 where unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except Exception:  # pragma: no cover - platforms without either
        return 0


_RECORD_COST_NS: Optional[float] = None


def record_cost_ns() -> float:
    """What recording one execution costs here (two clock reads and a histogram update), measured once."""
    global _RECORD_COST_NS
    if _RECORD_COST_NS is None:
        s = _Stat()
        n = 20000
        t = time.perf_counter_ns()
        for _ in range(n):
            t0 = time.perf_counter_ns()
            s.record(time.perf_counter_ns() - t0, True)
        _RECORD_COST_NS = (time.perf_counter_ns() - t) / n
    return _RECORD_COST_NS


def _node_dict(node_id: str, node_type: str, s: _Stat) -> Dict[str, Any]:
    n = s.count
    return {
        "node_id": node_id,
        "node_type": node_type,
        "execution_count": n,
        "success_count": s.ok,
        "error_count": s.errors,
        "success_rate": s.ok / n if n else 0.0,
        "total_duration_us": s.total_ns / 1000.0,
        "avg_duration_us": s.total_ns / 1000.0 / n if n else 0.0,
        "min_duration_us": (s.min_ns or 0) / 1000.0,
        "max_duration_us": s.max_ns / 1000.0,
        "p50_us": s.quantile_us(0.5),
        "p90_us": s.quantile_us(0.9),
        "p99_us": s.quantile_us(0.99),
        "p999_us": s.quantile_us(0.999),
        "items_processed": n,
        "samples_processed": s.samples,
    }


class Metrics:
    """Counters for one pipeline on the pure-Python runtime."""

    def __init__(self, node_ids: List[str], node_types: List[str], enabled: bool, breakers: Optional[List[Any]] = None):
        self.enabled = enabled
        self._ids = node_ids
        self._types = node_types
        #: Each node's circuit breaker (``_pure.reliability.Breaker``): its state and retry counts
        #: show in the node entries, as in the engine's document.
        self._breakers = breakers
        self.reset()

    def reset(self) -> None:
        self.pipeline = _Stat()
        self.nodes = [_Stat() for _ in self._ids]
        for b in self._breakers or ():
            b.reset_counters()

    def _node_entry(self, i: int) -> Dict[str, Any]:
        d = _node_dict(self._ids[i], self._types[i], self.nodes[i])
        if self._breakers is not None:
            d.update(self._breakers[i].metrics())
        return d

    def as_dict(self) -> Dict[str, Any]:
        run = self.pipeline
        peak = peak_memory_bytes()
        executions = sum(s.count for s in self.nodes)
        return {
            "pipeline_id": f"pipeline-{id(self):x}",
            "runtime": "python",
            "metrics_enabled": self.enabled,
            "workers": 1,
            "total_executions": run.count,
            "successful_executions": run.ok,
            "failed_executions": run.errors,
            "total_duration_us": run.total_ns / 1000.0,
            "total_duration_ms": run.total_ns / 1e6,
            "avg_duration_us": run.total_ns / 1000.0 / run.count if run.count else 0.0,
            "min_duration_us": (run.min_ns or 0) / 1000.0,
            "max_duration_us": run.max_ns / 1000.0,
            "latency_p50_us": run.quantile_us(0.5),
            "latency_p90_us": run.quantile_us(0.9),
            "latency_p99_us": run.quantile_us(0.99),
            "latency_p999_us": run.quantile_us(0.999),
            "peak_memory_bytes": peak,
            "peak_memory_mb": peak / (1024.0 * 1024.0),
            "metrics_overhead_us": record_cost_ns() * (executions + run.count) / 1000.0 if self.enabled else 0.0,
            "node_metrics": [self._node_entry(i) for i in range(len(self._ids))],
        }
