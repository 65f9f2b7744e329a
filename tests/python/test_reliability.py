"""Retries, circuit breakers and error context on both runtimes.

Delays are checked against the policy on a :class:`remotemedia.clock.FakeClock` (virtual time: the
runtime's waits move it and are recorded), so nothing here sleeps.
"""

import asyncio
import pickle

import numpy as np
import pytest

import remotemedia
from remotemedia import CircuitOpenError, NodeError, Node, PassthroughNode, Pipeline, RetryableError
from remotemedia.clock import FakeClock

DATA = (np.linspace(-0.5, 0.5, 160, dtype=np.float32), 16000)


class Flaky(Node):
    """Raises ``make_error()`` for its first ``fails`` calls, then passes its input on; records
    the clock's time at every call."""

    def __init__(self, fails, make_error, clock=None, node_id="flaky"):
        super().__init__(node_id=node_id)
        self.fails = fails
        self.make_error = make_error
        self.clock = clock
        self.calls = []

    def process(self, audio):
        self.calls.append(self.clock.now() if self.clock is not None else None)
        if self.fails > 0:
            self.fails -= 1
            raise self.make_error()
        return audio


class StatefulFlaky(Flaky):
    stateful = True


def pipeline(runtime, node, clock, **config):
    p = Pipeline([node, PassthroughNode(node_id="out")], runtime_hint=runtime, config=config)
    p.set_clock(clock)
    return p


@pytest.mark.parametrize("make_error", [
    lambda: TimeoutError("model server timed out"),
    lambda: ConnectionError("connection reset"),
    lambda: RetryableError("rate limited"),
], ids=["TimeoutError", "ConnectionError", "RetryableError"])
def test_transient_errors_are_retried_at_the_exponential_delays(runtime, make_error):
    clock = FakeClock()
    node = Flaky(3, make_error, clock)
    p = pipeline(runtime, node, clock, retry_policy="exponential", max_retries=3, enable_metrics=True)
    out = p.run_sync(DATA)
    np.testing.assert_array_equal(out["out"].samples, DATA[0])
    # 100, 200, 400 ms after each failure (base 100 ms, doubling).
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4])
    assert node.calls == pytest.approx([0.0, 0.1, 0.3, 0.7])
    entry = p.get_metrics()["node_metrics"][0]
    assert (entry["retry_count"], entry["error_count"], entry["success_count"]) == (3, 3, 1)
    assert entry["circuit_state"] == "closed"


def test_fixed_policy_capped_by_the_maximum_delay(runtime):
    clock = FakeClock()
    node = Flaky(2, lambda: TimeoutError("slow"), clock)
    p = pipeline(runtime, node, clock, retry_policy="exponential", max_retries=5,
                 retry_base_delay_ms=300, retry_max_delay_ms=400)
    p.run_sync(DATA)
    assert clock.sleeps == pytest.approx([0.3, 0.4])
    clock2 = FakeClock()
    fixed = Flaky(3, lambda: TimeoutError("slow"), clock2)
    pipeline(runtime, fixed, clock2, retry_policy="fixed", retry_base_delay_ms=250).run_sync(DATA)
    assert clock2.sleeps == pytest.approx([0.25, 0.25, 0.25])


def test_permanent_errors_fail_at_once_with_the_original_traceback(runtime):
    clock = FakeClock()
    node = Flaky(1, lambda: ValueError("bad sample"), clock)
    p = pipeline(runtime, node, clock, retry_policy="exponential", max_retries=5)
    with pytest.raises(NodeError) as info:
        p.run_sync(DATA)
    e = info.value
    assert not isinstance(e, CircuitOpenError)
    assert (e.kind, e.transient, e.retries) == ("permanent", False, 0)
    assert isinstance(e.__cause__, ValueError)
    assert "ValueError: bad sample" in e.traceback and "in process" in e.traceback
    assert len(node.calls) == 1 and clock.sleeps == []
    # The node stays usable.
    assert "out" in p.run_sync(DATA)


def test_retries_are_off_by_default(runtime):
    clock = FakeClock()
    node = Flaky(1, lambda: TimeoutError("slow"), clock)
    with pytest.raises(NodeError) as info:
        pipeline(runtime, node, clock).run_sync(DATA)
    assert (info.value.kind, info.value.retries) == ("transient", 0)
    assert len(node.calls) == 1


def test_exhausted_retries_report_the_full_context(runtime):
    clock = FakeClock()

    def chained():
        try:
            raise OSError("socket closed")
        except OSError as cause:
            try:
                raise TimeoutError("no answer in 2 s") from cause
            except TimeoutError as e:
                return e

    node = Flaky(10**9, chained, clock)
    p = pipeline(runtime, node, clock, retry_policy="fixed", max_retries=2, retry_base_delay_ms=50,
                 circuit_breaker_threshold=0)
    errors = []
    for _ in range(2):
        with pytest.raises(NodeError) as info:
            p.run_sync(DATA)
        errors.append(info.value)
    e = errors[0]
    assert (e.node_id, e.node_type, e.operation) == ("flaky", "Flaky", "process")
    assert (e.kind, e.retries, e.item) == ("transient", 2, None)
    assert [x.run for x in errors] == [0, 1]
    assert e.causes == ["OSError: socket closed"]
    assert "(after 2 retries)" in str(e) and "caused by: OSError: socket closed" in str(e)
    assert "TimeoutError: no answer in 2 s" in e.traceback
    assert isinstance(e.__cause__, TimeoutError)
    assert len(node.calls) == 6
    assert clock.sleeps == pytest.approx([0.05] * 4)
    # The context survives pickling (errors cross process boundaries in user code).
    again = pickle.loads(pickle.dumps(e))
    assert (again.retries, again.run, again.causes, again.kind) == (2, 0, ["OSError: socket closed"], "transient")


def test_breaker_opens_fails_fast_half_opens_and_closes(runtime):
    clock = FakeClock()
    node = Flaky(10**9, lambda: ValueError("model file corrupt"), clock)
    p = pipeline(runtime, node, clock, circuit_breaker_threshold=3, circuit_breaker_cooldown_ms=1000)
    for _ in range(3):
        with pytest.raises(NodeError) as info:
            p.run_sync(DATA)
        assert not isinstance(info.value, CircuitOpenError)
    with pytest.raises(CircuitOpenError) as info:
        p.run_sync(DATA)
    fast = info.value
    assert isinstance(fast, NodeError)
    assert (fast.node_id, fast.kind, fast.run) == ("flaky", "circuit_open", 3)
    assert fast.causes == ["ValueError: model file corrupt"]
    assert len(node.calls) == 3, "an open circuit does not call the node"
    entry = p.get_metrics()["node_metrics"][0]
    assert (entry["circuit_state"], entry["circuit_state_code"], entry["circuit_opens"], entry["circuit_rejections"]) == ("open", 1, 1, 1)
    assert entry["circuit_consecutive_failures"] == 3
    prom = p.get_metrics(format="prometheus")
    assert any(line.startswith("remotemedia_node_circuit_state{") and 'node_id="flaky"' in line and line.endswith(" 1")
               for line in prom.splitlines()), prom

    clock.advance(0.999)
    with pytest.raises(CircuitOpenError):
        p.run_sync(DATA)
    clock.advance(0.001)
    node.fails = 0
    assert "out" in p.run_sync(DATA), "the half-open trial goes through"
    assert len(node.calls) == 4
    entry = p.get_metrics()["node_metrics"][0]
    assert (entry["circuit_state"], entry["circuit_rejections"]) == ("closed", 2)


def test_a_failed_trial_opens_the_circuit_again(runtime):
    clock = FakeClock()
    node = Flaky(10**9, lambda: ValueError("still broken"), clock)
    p = pipeline(runtime, node, clock, circuit_breaker_threshold=2, circuit_breaker_cooldown_ms=500)
    for _ in range(2):
        with pytest.raises(NodeError):
            p.run_sync(DATA)
    clock.advance(0.5)
    with pytest.raises(NodeError) as info:
        p.run_sync(DATA)  # the trial, which fails
    assert not isinstance(info.value, CircuitOpenError)
    with pytest.raises(CircuitOpenError):
        p.run_sync(DATA)
    assert len(node.calls) == 3
    assert p.get_metrics()["node_metrics"][0]["circuit_opens"] == 2


def test_stateful_nodes_are_retried_only_by_their_own_settings(runtime):
    clock = FakeClock()
    node = StatefulFlaky(1, lambda: TimeoutError("slow"), clock)
    p = pipeline(runtime, node, clock, retry_policy="fixed", retry_base_delay_ms=10)
    with pytest.raises(NodeError) as info:
        p.run_sync(DATA)
    assert info.value.retries == 0
    own = StatefulFlaky(1, lambda: TimeoutError("slow"), clock, node_id="own")
    own.reliability = {"retry_policy": "fixed", "retry_base_delay_ms": 20, "max_retries": 1}
    assert "out" in pipeline(runtime, own, clock).run_sync(DATA)
    assert clock.sleeps == pytest.approx([0.02])


def test_async_runs_retry_too(runtime):
    clock = FakeClock()
    node = Flaky(2, lambda: ConnectionError("reset"), clock)
    p = pipeline(runtime, node, clock, retry_policy="exponential", retry_base_delay_ms=10)
    out = asyncio.run(p.run(DATA))
    np.testing.assert_array_equal(out["out"].samples, DATA[0])
    assert clock.sleeps == pytest.approx([0.01, 0.02])


def test_manifest_node_reliability_entry_round_trips(runtime):
    manifest = {
        "version": "1.0",
        "nodes": [{"id": "g", "type": "GainNode", "params": {"gain_db": 0},
                   "reliability": {"retry_policy": "fixed", "max_retries": 2}}],
        "config": {"retry_policy": "none"},
    }
    p = Pipeline.from_dict(manifest, runtime_hint=runtime)
    assert p.manifest["nodes"][0]["reliability"] == {"retry_policy": "fixed", "max_retries": 2}
    assert "g" in p.run_sync(DATA)


def test_error_classes_are_exported():
    assert remotemedia.CircuitOpenError is remotemedia.errors.CircuitOpenError
    assert issubclass(CircuitOpenError, NodeError)
    assert remotemedia.RetryableError is remotemedia.errors.RetryableError
    assert remotemedia.errors.is_transient(TimeoutError()) and remotemedia.errors.is_transient(ConnectionResetError())
    assert not remotemedia.errors.is_transient(ValueError())
