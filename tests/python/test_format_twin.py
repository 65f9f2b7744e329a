"""The numpy twin of FormatConverterNode against the documented convention (no Rust needed)."""


import numpy as np
import pytest

from remotemedia._pure.format import convert


def test_i16_round_trips_exactly_through_f32_and_i32():
    x = np.arange(-32768, 32768, dtype=np.int16)
    f = convert(x, "f32")
    assert f.dtype == np.float32
    assert np.array_equal(f.astype(np.float64), x / 32768.0)
    assert np.array_equal(convert(f, "i16"), x)
    assert np.array_equal(convert(convert(x, "i32"), "i16"), x)


def test_f32_to_i16_ties_to_even_clips_and_maps_nan():
    s = 1.0 / 32768
    x = np.array([0.5 * s, 1.5 * s, 2.5 * s, -0.5 * s, -1.5 * s, 1.0, -1.0, 2.0, np.inf, -np.inf, np.nan],
                 dtype=np.float32)
    assert convert(x, "i16").tolist() == [0, 2, 2, 0, -2, 32767, -32768, 32767, 32767, -32768, 0]


def test_f32_to_i32_and_back():
    x = np.array([1.0, -1.0, 0.5, np.nan, 1.5 / 2**31, 2.5 / 2**31], dtype=np.float32)
    assert convert(x, "i32").tolist() == [2**31 - 1, -(2**31), 2**30, 0, 2, 2]
    assert convert(np.array([-(2**31), 2**30], dtype=np.int32), "f32").tolist() == [-1.0, 0.5]


def test_i32_to_i16_rounds_half_to_even():
    x = np.array([0x8000, 0x18000, 0x28000, -0x8000, 2**31 - 1, -(2**31)], dtype=np.int32)
    assert convert(x, "i16").tolist() == [0, 2, 2, 0, 32767, -32768]


def test_shape_kept_and_same_format_not_copied():
    x = np.zeros((10, 2), dtype=np.float32)
    assert convert(x, "f32") is x
    assert convert(x, "i16").shape == (10, 2)


def test_bad_arguments():
    with pytest.raises(ValueError):
        convert(np.zeros(3, dtype=np.float32), "f64")
    with pytest.raises(TypeError):
        convert(np.zeros(3, dtype=np.float64), "i16")
