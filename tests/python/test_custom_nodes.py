"""Custom Python nodes: sync, async, multi-input, lifecycle, and errors that name the node."""

import asyncio
import threading

import numpy as np
import pytest

from remotemedia import Audio, GainNode, Node, NodeError, PassthroughNode, Pipeline, register_node, unregister_node

from conftest import tone


class Energy(Node):
    """Mean square of the samples, a JSON number."""

    def process(self, audio):
        return float(np.mean(audio.samples.astype(np.float64) ** 2))


class AsyncHalve(Node):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.loops = []

    async def process(self, audio):
        await asyncio.sleep(0)
        self.loops.append((threading.get_ident(), asyncio.get_running_loop()))
        return Audio(audio.samples * np.float32(0.5), audio.sample_rate)


class Ratio(Node):
    inputs = ["num", "den"]

    def process(self, num, den):
        return {"ratio": float(np.max(np.abs(num.samples)) / np.max(np.abs(den.samples))), "rate": num.sample_rate}


class Fails(Node):
    def process(self, audio):
        return helper_that_divides(audio)


def helper_that_divides(audio):
    return audio.frames / 0


def test_sync_node_returning_json(runtime):
    p = Pipeline([Energy(node_id="e")], runtime_hint=runtime)
    out = p.run_sync((tone(amplitude=0.5, seconds=1.0, freq_hz=100), 16000))
    assert out["e"] == pytest.approx(0.125, rel=1e-4)  # A^2 / 2 for a sine


def test_async_node_in_run_sync_reuses_one_loop_per_thread(runtime):
    node = AsyncHalve(node_id="h")
    p = Pipeline([node], runtime_hint=runtime)
    x = tone()
    for _ in range(3):
        np.testing.assert_array_equal(p.run_sync((x, 16000))["h"].samples, x * np.float32(0.5))
    threads = {t for t, _ in node.loops}
    loops = {id(loop) for _, loop in node.loops}
    assert len(loops) == len(threads)  # one loop per calling thread, kept alive between calls


def test_async_node_in_async_run(runtime):
    node = AsyncHalve(node_id="h")
    p = Pipeline([GainNode(6.0, node_id="g"), node], runtime_hint=runtime)
    x = tone()

    async def main():
        results = await asyncio.gather(*(p.run((x * np.float32(k), 16000)) for k in (1, 2, 3)))
        return results, asyncio.get_running_loop()

    results, loop = asyncio.run(main())
    for k, r in zip((1, 2, 3), results):
        np.testing.assert_array_equal(r["h"].samples, x * np.float32(k) * np.float32(10 ** (6 / 20)) * np.float32(0.5))
    if runtime == "python":
        assert all(lp is loop for _, lp in node.loops)  # awaited on the caller's loop


def test_async_run_sync_from_inside_a_running_loop():
    """run_sync of an async node while the calling thread runs a loop (e.g. Jupyter) still works."""
    p = Pipeline([AsyncHalve(node_id="h")], runtime_hint="python")

    async def main():
        return p.run_sync((tone(), 16000))

    assert asyncio.run(main())["h"].frames == 1600


def test_multi_input_node_gets_keyword_arguments(runtime):
    p = Pipeline(runtime_hint=runtime)
    p.connect(PassthroughNode(node_id="src"), GainNode(20 * np.log10(4), node_id="loud"))
    p.connect("loud", Ratio(node_id="r"), input_key="num").connect("src", "r", input_key="den")
    out = p.run_sync((tone(), 16000))["r"]
    assert out["ratio"] == pytest.approx(4.0, rel=1e-6) and out["rate"] == 16000


def test_node_error_names_the_node_and_keeps_the_traceback(runtime):
    p = Pipeline([GainNode(0.0, node_id="g"), Fails(node_id="bad")], runtime_hint=runtime)
    with pytest.raises(NodeError) as e:
        p.run_sync((tone(), 16000))
    err = e.value
    assert (err.node_id, err.node_type) == ("bad", "Fails")
    assert "bad" in str(err) and "ZeroDivisionError" in str(err)
    assert isinstance(err.__cause__, ZeroDivisionError)
    assert "helper_that_divides" in err.traceback and "ZeroDivisionError" in err.traceback
    # The failure is the node's, not the engine's: the same engine runs other pipelines fine.
    assert Pipeline([Energy(node_id="e")], runtime_hint=runtime).run_sync((tone(), 16000))["e"] > 0


def test_async_node_error_in_async_run(runtime):
    class AsyncFails(Node):
        async def process(self, audio):
            raise RuntimeError("model server unreachable")

    p = Pipeline([AsyncFails(node_id="remote")], runtime_hint=runtime)
    with pytest.raises(NodeError) as e:
        asyncio.run(p.run((tone(), 16000)))
    assert e.value.node_id == "remote" and "model server unreachable" in str(e.value)
    assert isinstance(e.value.__cause__, RuntimeError)


def test_initialize_once_cleanup_on_close(runtime):
    calls = []

    class Life(Node):
        async def initialize(self):
            calls.append("init")

        def process(self, audio):
            calls.append("process")
            return audio

        def cleanup(self):
            calls.append("cleanup")

    with Pipeline([Life(node_id="l")], runtime_hint=runtime) as p:
        p.run_sync((tone(), 16000))
        p.run_sync((tone(), 16000))
    assert calls == ["init", "process", "process", "cleanup"]


def test_state_persists_between_runs_and_subclass_without_super_init(runtime):
    class Counter(Node):
        def __init__(self, node_id):
            self.node_id = node_id  # forgets super().__init__(): still works
            self.n = 0

        def process(self, audio):
            self.n += 1
            return self.n

    p = Pipeline([Counter("c")], runtime_hint=runtime)
    assert [p.run_sync((tone(), 16000))["c"] for _ in range(3)] == [1, 2, 3]


def test_registration_rules():
    with pytest.raises(ValueError):

        @register_node(name="GainNode")
        class Clash(Node):
            pass

    with pytest.raises(TypeError):
        register_node(object)

    with pytest.raises(TypeError):

        @register_node
        class BadPorts(Node):
            inputs = "several"

    @register_node(name="Renamed")
    class Named(Node):
        def process(self, x):
            return x

    try:
        assert Named.type_name == "Renamed"
    finally:
        unregister_node("Renamed")


def test_type_name_defaults_to_the_class_name():
    class Base(Node):
        pass

    class Derived(Base):
        pass

    assert (Base.type_name, Derived.type_name) == ("Base", "Derived")
