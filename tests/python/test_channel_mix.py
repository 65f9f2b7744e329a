"""ChannelMixNode on both runtimes: stereo and 6-channel downmix to the mean, one channel, mono
upmix, a 5.1 -> stereo matrix; the numpy twin gives the engine's bits; errors in the same words;
``to_mono`` is the node's downmix."""

import numpy as np
import pytest

from remotemedia import ChannelMixNode, InputError, Pipeline
from remotemedia._pure.channel_mix import to_mono

from conftest import tone


def mixed(runtime, data, **params):
    return Pipeline([ChannelMixNode(node_id="m", **params)], runtime_hint=runtime).run_sync(data)["m"]


def ramp(channels, frames=480, dtype=np.float32):
    x = np.arange(frames, dtype=np.float64)[:, None] * np.arange(1, channels + 1)[None, :] / 1000.0
    return x.astype(dtype)


@pytest.mark.parametrize("channels", [2, 6])
def test_downmix_is_the_mean_of_the_channels(runtime, channels):
    out = mixed(runtime, (ramp(channels), 16000))
    assert out.samples.shape == (480,) and out.sample_rate == 16000 and out.samples.dtype == np.float32
    want = (channels + 1) / 2 * np.arange(480) / 1000.0
    assert np.allclose(out.samples, want, rtol=1e-6, atol=1e-9)


def test_one_channel_upmix_and_a_matrix(runtime):
    assert np.array_equal(mixed(runtime, (ramp(2), 16000), channel=1).samples, ramp(2)[:, 1])
    up = mixed(runtime, (ramp(1)[:, 0], 16000), channels=3)
    assert up.samples.shape == (480, 3) and np.array_equal(up.samples, np.repeat(ramp(1), 3, axis=1))
    g = 0.7071
    st = mixed(runtime, (ramp(6), 16000), matrix=[[1, 0, g, 0, g, 0], [0, 1, g, 0, 0, g]])
    x = ramp(1)[:, 0]
    assert np.allclose(st.samples[:, 0], x + g * 3 * x + g * 5 * x, atol=1e-6)
    assert np.allclose(st.samples[:, 1], 2 * x + g * 3 * x + g * 6 * x, atol=1e-6)


def test_mono_passes_unchanged(runtime):
    x = tone(dtype=np.int16)
    out = mixed(runtime, (x, 16000))
    assert out.samples.dtype == np.int16 and np.array_equal(out.samples, x)


@pytest.mark.parametrize("params, words", [
    ({"channels": 2}, "ChannelMixNode has no default mix from 6 to 2 channels (only to mono, or mono to N); give a matrix of 2 rows of 6 gains"),
    ({"channel": 6}, "ChannelMixNode takes input channel 6 (param channel, counted from 0), but the input has 6 channels"),
    ({"matrix": [[1, 1]]}, "ChannelMixNode's matrix has 2 gains per row, one per input channel, but the input has 6 channels"),
])
def test_refusals_name_the_node_and_what_it_needs(runtime, params, words):
    with pytest.raises(InputError) as e:
        mixed(runtime, (ramp(6), 16000), **params)
    assert e.value.node_id == "m" and str(e.value).endswith(f": {words}"), str(e.value)


@pytest.mark.requires_native
@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.int32])
def test_the_twin_gives_the_engines_bits(dtype):
    rng = np.random.default_rng(7)
    x = np.clip(rng.normal(0, 0.3, (4801, 6)), -0.99, 0.99)
    x = (x * (32767 if dtype == np.int16 else 2**31 - 1)).astype(dtype) if dtype != np.float32 else x.astype(np.float32)
    for params in ({}, {"channel": 4}, {"matrix": [[0.3, -0.2, 0.7071, 0.1, 0.5, 0.25], [1e-3, 1, 0.7071, 0, 0, 0.7071]]}):
        rust, py = (mixed(rt, (x, 48000), **params).samples for rt in ("rust", "python"))
        assert rust.shape == py.shape and np.array_equal(rust.view(np.uint32), py.view(np.uint32)), params
    assert np.array_equal(to_mono(x.astype(np.float32)), mixed("rust", (x.astype(np.float32), 48000)).samples)
