"""Pure-numpy twin of the native ``AudioResampleNode`` (src/nodes/resample.rs).

Same algorithm and filter as the native node: rubato 5.1's synchronous ``Fft`` block
convolution with a longer transform. The filter is an ``fft_in``-tap windowed-sinc low-pass
(squared periodic Blackman-Harris window, taps summing to 1, cutoff from rubato's
``calculate_cutoff``). The transform is ``n_in = FFT_FACTOR * fft_in`` points (fewer for very long
filters, see ``fft_lengths``), so each block carries ``block_in = n_in - fft_in`` input frames
counted from the first frame; each block is zero-padded to ``n_in``, transformed, multiplied by the
filter's spectrum, truncated (downsampling) or zero-extended (upsampling) to ``n_out/2 + 1`` bins,
inverse-transformed at ``n_out = n_in * out / in`` points and overlap-added with a hop of
``block_out = n_out - fft_out`` frames. The ``fft_out // 2`` frames of filter delay are dropped
and exactly ``round(frames * output_rate / input_rate)`` frames are returned. Blocks are processed
all at once along a numpy axis instead of one by one.

Here everything runs in float64, so the output differs from the native one only by the native
float32 rounding (low/medium/high run in f32 there, very_high in f64).
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["resample", "block_sizes", "fft_lengths", "output_frames", "state_problem", "rate_pair_problems", "QUALITIES"]

MIN_RATE = 8000
MAX_RATE = 192000

# Filter length on the lower-rate side per preset; keep in step with Quality::min_block in Rust.
_MIN_BLOCK = {"low": 64, "medium": 128, "high": 256, "very_high": 1024}
QUALITIES = tuple(_MIN_BLOCK)

# rubato's calculate_cutoff coefficients for WindowFunction::BlackmanHarris2.
_K1, _K2, _K3 = np.float32(13.745202940783823), np.float32(121.73532586374934), np.float32(5964.163279612051)


def output_frames(frames: int, input_rate: int, output_rate: int) -> int:
    """round(frames * output_rate / input_rate), halves rounded up (exact integer arithmetic)."""
    return (frames * output_rate * 2 + input_rate) // (2 * input_rate)


def _largest_prime_factor(n: int) -> int:
    largest, p = 1, 2
    while p * p <= n:
        while n % p == 0:
            largest, n = p, n // p
        p += 1
    return max(largest, n)


def block_sizes(input_rate: int, output_rate: int, quality: str) -> tuple[int, int]:
    """FFT block sizes (fft_in, fft_out); both even so the delay is a whole number of frames."""
    g = np.gcd(input_rate, output_rate)
    min_in, min_out = input_rate // g, output_rate // g
    k = max(-(-_MIN_BLOCK[quality] // min(min_in, min_out)), 2)
    k += k % 2
    for cand in range(k, k + k // 4 + 1, 2):
        if max(_largest_prime_factor(cand * min_in), _largest_prime_factor(cand * min_out)) <= 7:
            k = cand
            break
    return int(k * min_in), int(k * min_out)


def state_problem(input_rate: int, output_rate: int, channels: int, quality: str) -> "str | None":
    """Why a resampler for this rate pair, channel count and preset would hold too much state (its
    blocks follow the rates' common divisor, and a stream's sender picks its rate), or None: the
    twin of ``state_problem`` in src/nodes/resample.rs, same limits, same words."""
    from ..limits import RESAMPLER_BLOCK_FRAMES, RESAMPLER_BLOCK_SAMPLES

    if input_rate == output_rate:
        return None
    block = max(block_sizes(input_rate, output_rate, quality))
    if block > RESAMPLER_BLOCK_FRAMES:
        g = int(np.gcd(input_rate, output_rate))
        return (
            f"resampling {input_rate} Hz to {output_rate} Hz needs FFT blocks of {block} frames (the rates' greatest "
            f"common divisor is only {g} Hz); the resampler takes at most {RESAMPLER_BLOCK_FRAMES} (rates that are "
            "multiples of 25 Hz always fit)"
        )
    if block * channels > RESAMPLER_BLOCK_SAMPLES:
        return (
            f"resampling {input_rate} Hz to {output_rate} Hz with {channels} channels needs FFT blocks of {block} frames "
            f"per channel, {block * channels} samples in all; the resampler holds at most {RESAMPLER_BLOCK_SAMPLES}"
        )
    return None


def rate_pair_problems(params: dict) -> list:
    """The manifest check of a node with both rates given (``check_rate_pair`` in Rust): a pair
    the resampler would refuse is a manifest problem, not a failure of every run."""
    from ..limits import RESAMPLER_BLOCK_FRAMES

    input_rate, output_rate = params.get("input_rate"), params.get("output_rate")
    if not isinstance(input_rate, int) or not isinstance(output_rate, int) or input_rate == output_rate:
        return []
    block = max(block_sizes(input_rate, output_rate, params.get("quality") or "high"))
    if block <= RESAMPLER_BLOCK_FRAMES:
        return []
    return [(
        "input_rate",
        f"a rate the resampler can take to output_rate (FFT blocks of at most {RESAMPLER_BLOCK_FRAMES} frames; "
        "rates that are multiples of 25 Hz always fit)",
        f"{input_rate}, which with output_rate {output_rate} needs blocks of {block} frames",
    )]


# Transform length in filter lengths and the largest complex half-transform chosen when a smaller
# factor is possible; keep in step with FFT_FACTOR / MAX_HALF_FFT in Rust.
FFT_FACTOR = 8
_MAX_HALF_FFT = 1 << 15


def fft_lengths(fft_in: int, fft_out: int) -> tuple[int, int]:
    """Forward and inverse transform lengths (n_in, n_out) for the block sizes."""
    f = FFT_FACTOR
    while f > 2 and max(fft_in, fft_out) * f // 2 > _MAX_HALF_FFT:
        f //= 2
    return f * fft_in, f * fft_out


def _calculate_cutoff(n: int) -> np.float32:
    # Same float32 arithmetic as rubato's calculate_cutoff::<f32>.
    nt = np.float32(n)
    one = np.float32(1.0)
    return one / (_K1 / nt + _K2 / (nt * nt) + _K3 / (nt * nt * nt) + one)


def _cutoff(fft_in: int, fft_out: int) -> np.float32:
    if fft_in > fft_out:
        return _calculate_cutoff(fft_out) * np.float32(fft_out) / np.float32(fft_in)
    return _calculate_cutoff(fft_in)


@functools.lru_cache(maxsize=32)
def _filter_spectrum(fft_in: int, fft_out: int, n_in: int) -> np.ndarray:
    """Spectrum (n_in-point real FFT) of the normalised windowed sinc, scaled by 1/n_in."""
    n = fft_in
    x = np.arange(n, dtype=np.float64)
    ph = 2.0 * np.pi * x / n
    w = 0.35875 - 0.48829 * np.cos(ph) + 0.14128 * np.cos(2 * ph) - 0.01168 * np.cos(3 * ph)
    w = w * w
    arg = (x - float(n // 2)) * float(_cutoff(fft_in, fft_out))
    taps = w * np.sinc(arg)
    taps /= taps.sum()
    filt = np.zeros(n_in)
    filt[:n] = taps / n_in
    spec = np.fft.rfft(filt)
    spec.flags.writeable = False
    return spec


def resample(samples: np.ndarray, input_rate: int, output_rate: int, quality: str = "high") -> np.ndarray:
    """Resample (frames, channels) float32 audio; returns (round(frames*out/in), channels) float32."""
    if quality not in _MIN_BLOCK:
        raise ValueError(f"quality must be one of {', '.join(QUALITIES)}, got {quality!r}")
    for what, rate in (("input", input_rate), ("output", output_rate)):
        if not (isinstance(rate, (int, np.integer)) and MIN_RATE <= rate <= MAX_RATE):
            raise ValueError(f"{what} sample rate must be an integer from {MIN_RATE} to {MAX_RATE} Hz, got {rate!r}")
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"samples must have shape (frames, channels), got {x.shape}")
    frames, channels = x.shape
    if input_rate == output_rate:
        return x.copy()
    total = output_frames(frames, int(input_rate), int(output_rate))
    if total == 0:
        return np.zeros((0, channels), dtype=np.float32)

    fft_in, fft_out = block_sizes(int(input_rate), int(output_rate), quality)
    n_in, n_out = fft_lengths(fft_in, fft_out)
    block_in, hop = n_in - fft_in, n_out - fft_out
    delay = fft_out // 2
    blocks = max(-(-(delay + total) // hop), -(-frames // block_in))
    xin = np.zeros((channels, blocks * block_in))
    xin[:, :frames] = x.T
    spec_in = np.fft.rfft(xin.reshape(channels, blocks, block_in), n=n_in, axis=-1)
    keep = n_in // 2 + 1 if fft_in < fft_out else n_out // 2
    spec_out = np.zeros((channels, blocks, n_out // 2 + 1), dtype=np.complex128)
    spec_out[..., :keep] = spec_in[..., :keep] * _filter_spectrum(fft_in, fft_out, n_in)[:keep]
    # realfft's inverse is unnormalised; numpy's divides by n.
    y = np.fft.irfft(spec_out, n=n_out, axis=-1) * n_out
    # Overlap-add: block b covers output frames [b*hop, b*hop + n_out); its last fft_out frames
    # (fft_out <= hop) land on the start of block b+1.
    out = np.zeros((channels, (blocks + 1) * hop))
    out[:, : blocks * hop] += y[..., :hop].reshape(channels, -1)
    tails = np.zeros((channels, blocks, hop))
    tails[..., :fft_out] = y[..., hop:]
    out[:, hop:] += tails.reshape(channels, -1)
    return np.ascontiguousarray(out[:, delay : delay + total].T, dtype=np.float32)
