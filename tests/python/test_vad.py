"""VADNode on both runtimes (the numpy kernel comes from the VAD branch), and its outputs in graphs."""

import numpy as np
import pytest

from remotemedia import Audio, GainNode, Node, Pipeline, VadResult, VADNode

from conftest import tone


def burst(rate=16000):
    """0.5 s of silence, 1 s of a 440 Hz tone, 0.5 s of silence."""
    silence = np.zeros(rate // 2, np.float32)
    return np.concatenate([silence, tone(440, rate=rate, seconds=1.0, amplitude=0.5), silence])


def test_one_segment_around_the_tone(runtime):
    x = burst()
    out = Pipeline([VADNode(frame_duration_ms=30, hangover_ms=0, node_id="v")], runtime_hint=runtime).run_sync((x, 16000))["v"]
    assert isinstance(out, VadResult)
    assert out["audio"] == Audio(x, 16000)
    assert out["frames"].dtype == bool and len(out["frames"]) in (66, 67)
    assert len(out["segments"]) == 1
    start, end = out["segments"][0]
    assert start == pytest.approx(0.5, abs=0.1) and end == pytest.approx(1.5, abs=0.1)


def test_silence_has_no_segments(runtime):
    out = Pipeline([VADNode(node_id="v")], runtime_hint=runtime).run_sync((np.zeros(16000, np.float32), 16000))["v"]
    assert out["segments"] == [] and not out["frames"].any()


class CountSegments(Node):
    inputs = ["segments", "audio"]

    def process(self, segments, audio):
        # Projected segments arrive as the engine's JSON value: a list of [start_s, end_s] lists.
        assert all(isinstance(seg, list) and len(seg) == 2 for seg in segments)
        return {"count": len(segments), "seconds": audio.duration}


def test_vad_outputs_feed_downstream_nodes(runtime):
    p = Pipeline(runtime_hint=runtime)
    v = VADNode(hangover_ms=0, node_id="v")
    p.connect(v, GainNode(6.0, node_id="g"))  # a VAD result counts as its audio
    p.connect(v, CountSegments(node_id="n"), output_key="segments", input_key="segments")
    p.connect(v, "n", output_key="audio", input_key="audio")
    x = burst()
    out = p.run_sync((x, 16000))
    np.testing.assert_array_equal(out["g"].samples, x * np.float32(10 ** (6 / 20)))
    assert out["n"] == {"count": 1, "seconds": 2.0}
