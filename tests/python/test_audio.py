import numpy as np

from remotemedia import Audio

from conftest import tone


def test_properties_of_mono_and_stereo():
    mono = Audio(tone(rate=16000, seconds=0.5), 16000)
    assert (mono.channels, mono.frames, mono.sample_rate) == (1, 8000, 16000)
    assert mono.duration == 0.5
    stereo = Audio(tone(rate=48000, seconds=0.25, channels=2), 48000)
    assert (stereo.channels, stereo.frames) == (2, 12000)


def test_asarray_gives_the_samples_without_copy():
    x = tone()
    a = Audio(x, 16000)
    assert np.asarray(a) is x
    assert np.asarray(a, dtype=np.float64).dtype == np.float64


def test_contiguous_input_is_not_copied_and_strided_input_is_copied_once():
    x = tone(seconds=0.2)
    assert Audio(x, 16000).samples is x
    strided = x[::2]
    a = Audio(strided, 8000)
    assert a.samples.flags.c_contiguous and np.array_equal(a.samples, strided)
    stereo_f = np.asfortranarray(tone(channels=2))
    b = Audio(stereo_f, 16000)
    assert b.samples.flags.c_contiguous and np.array_equal(b.samples, stereo_f)


def test_equality_and_repr():
    x = tone()
    assert Audio(x, 16000) == Audio(x.copy(), 16000)
    assert Audio(x, 16000) != Audio(x, 8000)
    assert Audio(x, 16000) != Audio(x[:-1], 16000)
    assert "16000 Hz" in repr(Audio(x, 16000))
