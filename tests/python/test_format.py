"""FormatConverterNode on both runtimes (the numpy kernel comes from the format branch)."""

import numpy as np
import pytest

from remotemedia import FormatConverterNode, Pipeline

from conftest import tone


def convert(runtime, x, target, rate=16000):
    return Pipeline([FormatConverterNode(target, node_id="c")], runtime_hint=runtime).run_sync((x, rate))["c"]


def test_i16_to_f32_divides_by_32768(runtime):
    x = np.array([-32768, -16384, -1, 0, 1, 16384, 32767], dtype=np.int16)
    out = convert(runtime, x, "f32")
    assert out.samples.dtype == np.float32
    np.testing.assert_array_equal(out.samples, x.astype(np.float64) / 32768.0)


def test_i32_to_f32_divides_by_2_to_the_31(runtime):
    x = np.array([-(2**31), -(2**30), 0, 2**30, 2**31 - 1], dtype=np.int32)
    out = convert(runtime, x, "f32")
    np.testing.assert_array_equal(out.samples, (x.astype(np.float64) / 2**31).astype(np.float32))


# f32 holds 24 significant bits: i32 values come back within half an f32 step (2**7 at full scale).
@pytest.mark.parametrize("target, dtype, tol", [("i16", np.int16, 1), ("i32", np.int32, 2**7), ("f32", np.float32, 0)])
def test_round_trip_through_f32_is_within_one_step(runtime, target, dtype, tol):
    x = tone(dtype=dtype, channels=2) if dtype != np.float32 else tone(channels=2)
    f = convert(runtime, x, "f32").samples
    back = convert(runtime, f, target).samples
    assert back.dtype == dtype and back.shape == x.shape
    assert np.max(np.abs(back.astype(np.float64) - x.astype(np.float64))) <= tol


def test_full_scale_f32_clips_instead_of_wrapping(runtime):
    out = convert(runtime, np.array([-1.5, -1.0, 1.0, 1.5], dtype=np.float32), "i16").samples
    assert out[0] == out[1] == -32768 and out[2] == out[3] and out[3] >= 32766
