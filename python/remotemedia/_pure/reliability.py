"""Retry policies and circuit breakers of the pure-Python runtime, twins of the engine's
``src/runtime/retry.rs`` and ``src/runtime/breaker.rs`` (same settings, same state machine, same
metrics fields)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from .._schema import SCHEMA
from .graph import GraphNode

__all__ = ["RetrySettings", "Breaker"]

#: The retry and breaker fields' defaults (``PipelineConfig::default()``, through the schema).
_DEFAULTS = {f["name"]: f["default"] for f in SCHEMA["config"] if f["per_node"]}


def _setting(config: Mapping[str, Any], node: GraphNode, key: str) -> Any:
    own = node.reliability or {}
    if own.get(key) is not None:
        return own[key]
    return config.get(key, _DEFAULTS[key])


@dataclass(frozen=True)
class RetrySettings:
    """One node's effective retry settings (``config`` overridden by the node's ``reliability``).
    Stateful (streaming) nodes are not retried unless their own entry names a policy."""

    policy: str = "none"
    max_retries: int = 0
    base_delay_ms: int = 0
    max_delay_ms: int = 0
    jitter: bool = False

    @classmethod
    def for_node(cls, config: Mapping[str, Any], node: GraphNode) -> "RetrySettings":
        own = node.reliability or {}
        if own.get("retry_policy") is not None:
            policy = own["retry_policy"]
        elif node.type.stateful:
            policy = "none"
        else:
            policy = config.get("retry_policy", "none")
        return cls(
            policy=policy,
            max_retries=int(_setting(config, node, "max_retries")),
            base_delay_ms=int(_setting(config, node, "retry_base_delay_ms")),
            max_delay_ms=int(_setting(config, node, "retry_max_delay_ms")),
            jitter=bool(_setting(config, node, "retry_jitter")),
        )

    def allows(self, retries: int) -> bool:
        """Whether a failure after ``retries`` retries may be retried once more."""
        return self.policy != "none" and retries < self.max_retries

    def delay(self, retry: int, unit: float = 1.0) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first): ``fixed`` waits the base
        delay, ``exponential`` ``base * 2**(retry-1)``, both capped at the maximum; with jitter,
        ``unit`` (in 0..1) scales it."""
        if self.policy == "none":
            return 0.0
        if self.policy == "fixed":
            ms = self.base_delay_ms
        else:
            ms = self.base_delay_ms * (1 << min(max(retry - 1, 0), 40))
        ms = min(ms, self.max_delay_ms)
        seconds = ms / 1000.0
        if self.jitter:
            seconds *= min(max(unit, 0.0), 1.0)
        return seconds


class Breaker:
    """One node's circuit breaker: opens after ``threshold`` consecutive failed calls (0: never),
    fails calls fast while open, lets one trial call through once ``cooldown`` seconds have passed
    (half-open), closes on that call's success and opens again on its failure."""

    def __init__(self, threshold: int, cooldown_s: float):
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._lock = threading.Lock()
        self.state = "closed"
        self.consecutive_failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.last_failure: Optional[str] = None
        self.reset_counters()

    @classmethod
    def for_node(cls, config: Mapping[str, Any], node: GraphNode) -> "Breaker":
        return cls(
            int(_setting(config, node, "circuit_breaker_threshold")),
            int(_setting(config, node, "circuit_breaker_cooldown_ms")) / 1000.0,
        )

    def reset_counters(self) -> None:
        self.opens = self.rejections = self.retries = 0

    def admit(self, now: float) -> bool:
        with self._lock:
            if self.state == "closed":
                return True
            if self.state == "open" and now - self._opened_at >= self.cooldown_s:
                self.state = "half_open"
                self._trial_in_flight = True
                return True
            if self.state == "half_open" and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            self.rejections += 1
            return False

    def on_success(self) -> None:
        with self._lock:
            self.consecutive_failures = 0
            self.state = "closed"
            self._trial_in_flight = False

    def on_failure(self, now: float, message: str) -> bool:
        """Records a failed call; True if it opened the circuit."""
        with self._lock:
            self.consecutive_failures += 1
            self.last_failure = message
            if self.state == "half_open":
                opened = True
            elif self.state == "closed":
                opened = self.threshold > 0 and self.consecutive_failures >= self.threshold
            else:
                opened = False
            self._trial_in_flight = False
            if opened:
                self.state = "open"
                self._opened_at = now
                self.opens += 1
            return opened

    def on_neutral(self) -> None:
        """A call rejected unusable input: no verdict on the node's health."""
        with self._lock:
            self._trial_in_flight = False

    def remaining_cooldown(self, now: float) -> float:
        with self._lock:
            if self.state != "open":
                return 0.0
            return max(self.cooldown_s - (now - self._opened_at), 0.0)

    def metrics(self) -> Dict[str, Any]:
        """The fields this breaker adds to its node's metrics entry (as the engine's)."""
        codes = {"closed": 0, "open": 1, "half_open": 2}
        return {
            "retry_count": self.retries,
            "circuit_state": self.state,
            "circuit_state_code": codes[self.state],
            "circuit_consecutive_failures": self.consecutive_failures,
            "circuit_opens": self.opens,
            "circuit_rejections": self.rejections,
        }
