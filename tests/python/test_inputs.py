"""Run inputs: every kind of bad data is an InputError saying what is wrong, and the pipeline
stays usable for the next good run."""

import numpy as np
import pytest

from remotemedia import Audio, GainNode, InputError, MixNode, PassthroughNode, Pipeline

from conftest import tone


@pytest.fixture
def pipeline(runtime):
    return Pipeline([GainNode(6.0, node_id="g")], runtime_hint=runtime)


def still_works(p):
    x = tone()
    np.testing.assert_array_equal(p.run_sync((x, 16000))["g"].samples, x * np.float32(10 ** (6 / 20)))


@pytest.mark.parametrize(
    "data, words",
    [
        ((tone().astype(np.float64), 16000), ["float32, int16 or int32", "float64", "astype"]),
        ((tone().astype(np.uint8), 16000), ["float32, int16 or int32", "uint8"]),
        ((np.zeros((10, 2, 2), np.float32), 16000), ["3-D", "(10, 2, 2)"]),
        ((np.zeros(0, np.float32), 16000), ["empty"]),
        ((np.zeros((0, 2), np.float32), 16000), ["empty"]),
        ((np.array([0.0, np.nan, 1.0], np.float32), 16000), ["NaN", "frame 1"]),
        ((np.array([[0.0, 0.0], [np.inf, 0.0]], np.float32), 16000), ["infinity", "frame 1"]),
        ((np.zeros((2, 48000), np.float32), 48000), ["(frames, channels)", "samples.T"]),
        (([0.0, 0.1], 16000), ["numpy array", "list"]),
        ((tone(), 0), ["positive"]),
        ((tone(), -16000), ["positive"]),
        ((tone(), 16000.5), ["whole number"]),
        ((tone(), "16000"), ["positive integer"]),
        ((tone(), True), ["positive integer"]),
        ((tone(), None), ["positive integer"]),
        (tone(), ["sample rate"]),
        ("audio.wav", ["str"]),
        ((tone(), 16000, 1), ["tuple"]),
    ],
)
def test_bad_input_is_an_input_error(pipeline, data, words):
    with pytest.raises(InputError) as e:
        pipeline.run_sync(data)
    for w in words:
        assert w in str(e.value)
    assert isinstance(e.value, ValueError)
    still_works(pipeline)


def test_bad_input_to_async_run(pipeline):
    import asyncio

    with pytest.raises(InputError):
        asyncio.run(pipeline.run((tone(), 0)))
    still_works(pipeline)


def test_integral_float_rate_and_numpy_int_rate_are_accepted(pipeline):
    assert pipeline.run_sync((tone(), 16000.0))["g"].sample_rate == 16000
    assert pipeline.run_sync((tone(), np.int64(16000)))["g"].sample_rate == 16000


def test_strided_input_gives_the_same_result_as_contiguous(pipeline):
    stereo = tone(channels=4)
    view = stereo[::2, 1:3]  # non-contiguous
    assert not view.flags.c_contiguous
    a = pipeline.run_sync((view, 8000))["g"]
    b = pipeline.run_sync((np.ascontiguousarray(view), 8000))["g"]
    assert a == b


def test_int_inputs_are_accepted_where_nodes_take_them(runtime):
    p = Pipeline([PassthroughNode(node_id="p")], runtime_hint=runtime)
    for dtype in (np.int16, np.int32):
        x = tone(dtype=dtype)
        out = p.run_sync((x, 16000))["p"]
        assert out.samples.dtype == dtype
        np.testing.assert_array_equal(out.samples, x)


def test_named_inputs_must_match_the_source_nodes(runtime):
    p = Pipeline([PassthroughNode(node_id="a"), PassthroughNode(node_id="b"), MixNode(node_id="m")],
                 edges=[("a", "m"), ("b", "m")], runtime_hint=runtime)
    good = (tone(), 16000)
    with pytest.raises(InputError) as e:
        p.run_sync({"a": good})
    assert "'b'" in str(e.value)
    with pytest.raises(InputError) as e:
        p.run_sync({"a": good, "b": good, "m": good})
    assert "'m'" in str(e.value) and "not a source" in str(e.value)
    with pytest.raises(InputError) as e:
        p.run_sync({"a": good, "b": (tone(), 0)})
    assert np.max(np.abs(p.run_sync({"a": good, "b": Audio(-tone(), 16000)})["m"].samples)) == 0.0
