import numpy as np
import pytest

from remotemedia import InputError, MixNode, PassthroughNode, Pipeline

from conftest import tone


def mixer(runtime):
    """Two passthrough sources 'a' and 'b' feeding a MixNode 'mix'."""
    p = Pipeline(
        [PassthroughNode(node_id="a"), PassthroughNode(node_id="b"), MixNode(node_id="mix")],
        edges=[("a", "mix"), ("b", "mix")],
        runtime_hint=runtime,
    )
    assert p.source_ids == ["a", "b"]
    return p


def test_mix_sums_sample_by_sample(runtime):
    x, y = tone(440, amplitude=0.3), tone(1000, amplitude=0.2)
    out = mixer(runtime).run_sync({"a": (x, 16000), "b": (y, 16000)})["mix"]
    np.testing.assert_array_equal(out.samples, x + y)
    assert out.sample_rate == 16000


def test_a_tone_and_its_negation_cancel(runtime):
    x = tone(300)
    out = mixer(runtime).run_sync({"a": (x, 16000), "b": (-x, 16000)})["mix"]
    assert np.max(np.abs(out.samples)) == 0.0


def test_shorter_input_is_padded_with_silence(runtime):
    x, y = tone(seconds=0.1), tone(seconds=0.05, freq_hz=50)
    out = mixer(runtime).run_sync({"a": (x, 16000), "b": (y, 16000)})["mix"]
    assert out.frames == x.size
    np.testing.assert_array_equal(out.samples[: y.size], x[: y.size] + y)
    np.testing.assert_array_equal(out.samples[y.size:], x[y.size:])


def test_stereo_inputs_mix_per_channel(runtime):
    x, y = tone(channels=2), tone(channels=2, freq_hz=60)
    out = mixer(runtime).run_sync({"a": (x, 16000), "b": (y, 16000)})["mix"]
    assert out.samples.shape == x.shape
    np.testing.assert_array_equal(out.samples, x + y)


def test_same_input_to_both_sources_doubles_it(runtime):
    x = tone()
    out = mixer(runtime).run_sync((x, 16000))["mix"]
    np.testing.assert_array_equal(out.samples, x + x)


@pytest.mark.parametrize(
    "b, words",
    [
        ((tone(rate=8000), 8000), ["8000", "16000"]),
        ((tone(channels=2), 16000), ["x2", "x1"]),
        ((tone(dtype=np.int16), 16000), ["i16", "f32"]),
    ],
)
def test_mismatched_inputs_are_rejected(runtime, b, words):
    p = mixer(runtime)
    with pytest.raises(InputError) as e:
        p.run_sync({"a": (tone(), 16000), "b": b})
    assert "mix" in str(e.value)
    for w in words:
        assert w in str(e.value)
    assert p.run_sync({"a": (tone(), 16000), "b": (tone(), 16000)})["mix"].frames == 1600
