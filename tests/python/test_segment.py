"""SegmentNode on both runtimes after a VADNode: clips hold exactly the speech segments' frames,
each the audio there bit for bit, with their place in the recording; padding and splitting on
analytic signals; the twin picks the engine's spans; in a streaming session the clips come at the
close; errors in the same words."""

import numpy as np
import pytest

from remotemedia import Clip, InputError, Node, Pipeline, SegmentNode, VADNode, VadResult
from remotemedia._pure.segment import spans

RATE = 16000


def bursts(seconds, spans_s, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    x = np.zeros(t.size, np.float32)
    for a, b in spans_s:
        sl = slice(int(a * rate), int(b * rate))
        x[sl] = 0.5 * np.sin(2 * np.pi * 300 * t[sl])
    return x


def vad_clips(runtime, x, **params):
    p = Pipeline([VADNode(node_id="vad"), SegmentNode(node_id="clips", **params)], runtime_hint=runtime,
                 outputs=["vad", "clips"])
    return p.run_sync((x, RATE))


def test_clips_hold_exactly_the_segments_frames(runtime):
    x = bursts(4.0, [(0.5, 1.5), (2.2, 3.1)])
    out = vad_clips(runtime, x, pad_ms=0, min_duration_s=0)
    segments, clips = out["vad"].segments, out["clips"]
    assert len(segments) == 2 and len(clips) == 2
    assert all(type(c) is Clip for c in clips)
    speech = sum(round(e * RATE) - round(s * RATE) for s, e in segments)
    assert sum(c.frames for c in clips) == speech
    for c, (s, e) in zip(clips, segments):
        assert np.array_equal(c.samples, x[c.start_frame:c.end_frame])
        assert c.start == pytest.approx(s, abs=1e-9) and c.end == pytest.approx(e, abs=1e-9)
        assert c.sample_rate == RATE and c.channels == 1


def test_padding_and_the_minimum(runtime):
    x = bursts(4.0, [(0.5, 1.5), (2.2, 3.1)])
    plain = vad_clips(runtime, x, pad_ms=0, min_duration_s=0)["clips"]
    padded = vad_clips(runtime, x, pad_ms=100, min_duration_s=0)["clips"]
    assert len(plain) == len(padded) == 2
    for a, b in zip(plain, padded):
        assert (b.start_frame, b.end_frame) == (a.start_frame - 1600, a.end_frame + 1600)
    # The minimum applies to the speech before padding: 1.15 s keeps the first (1.2 s), not the second.
    assert plain[0].duration >= 1.15 > plain[1].duration
    assert vad_clips(runtime, x, pad_ms=100, min_duration_s=1.15)["clips"] == [padded[0]]


class Given(Node):
    """A Python "VAD" that hands on fixed segments over its input audio."""

    accepts_vad_result = True

    def process(self, audio):
        return VadResult(segments=self.params["segments"], frames=np.zeros(0, bool), audio=audio)


def test_a_long_segment_splits_at_the_quiet_gap(runtime):
    # 10 s of tone with 40 ms of silence at 6.00-6.04 s, given as one segment.
    x = bursts(10.0, [(0.0, 6.0), (6.04, 10.0)])
    p = Pipeline([Given(node_id="vad", segments=[[0.0, 10.0]]),
                  SegmentNode(node_id="clips", pad_ms=0, min_duration_s=0, max_duration_s=8)], runtime_hint=runtime)
    clips = p.run_sync((x, RATE))["clips"]
    assert len(clips) == 2 and clips[0].end_frame == clips[1].start_frame
    assert 96000 <= clips[0].end_frame <= 96640 and all(c.duration <= 8 for c in clips)


def test_a_python_vad_feeds_it_and_the_twin_picks_the_engines_spans(runtime):
    rng = np.random.default_rng(3)
    x = (rng.normal(0, 0.1, (RATE * 12, 2)) * np.abs(np.sin(np.arange(RATE * 12) / 9000.0))[:, None]).astype(np.float32)
    segments = [[0.27, 3.9], [3.93, 4.2], [5.0, 11.97], [11.99, 12.5]]
    params = {"pad_ms": 40.0, "min_duration_s": 0.2, "max_duration_s": 2.5, "merge_gap_ms": 50.0}
    twin = spans(x, RATE, segments, params)
    assert len(twin) >= 5 and all(b - a <= 40000 for a, b in twin)
    p = Pipeline([Given(node_id="given", segments=segments), SegmentNode(node_id="clips", **params)], runtime_hint=runtime)
    got = p.run_sync((x, RATE))["clips"]
    assert [(c.start_frame, c.end_frame) for c in got] == twin
    assert all(np.array_equal(c.samples, x[c.start_frame:c.end_frame]) for c in got)


def test_a_session_gives_the_clips_at_its_close(runtime):
    x = bursts(4.0, [(0.5, 1.5), (2.2, 3.1)])
    whole = vad_clips(runtime, x)["clips"]
    p = Pipeline([VADNode(node_id="vad"), SegmentNode(node_id="clips")], runtime_hint=runtime)
    with p.stream() as s:
        for k in range(0, x.size, 3200):
            assert s.push((x[k:k + 3200], RATE))["clips"] == []
        last = s.close()
    assert last["clips"] == whole and len(whole) == 2


def test_audio_instead_of_a_vad_result_is_refused(runtime):
    p = Pipeline([SegmentNode(node_id="clips")], runtime_hint=runtime)
    with pytest.raises(InputError) as e:
        p.run_sync((bursts(0.1, []), RATE))
    assert e.value.node_id == "clips" and str(e.value).endswith(
        ": SegmentNode needs a VAD result (speech segments and their audio), received audio; put it after a VAD node, "
        "on the VAD's whole output (no output_key)"), str(e.value)
