#!/usr/bin/env bash
# Makes dataflows/sample_speech.wav: ~5.9 s of 48 kHz 16-bit mono synthetic speech, three phrases
# separated by ~0.7 s pauses, with pink noise at about -40 dBFS RMS underneath (so a VAD sees
# three segments over a non-zero noise floor).
#
# Tools (Debian packages): espeak-ng 1.51 (`espeak-ng`), SoX 14.4.2 (`sox`, `soxi`).
# Deterministic: espeak-ng and SoX's resampler have no randomness; the noise uses SoX's
# repeatable mode (-R, fixed seed) and dither is off (-D), so the same tool versions give the
# same bytes. Other versions of espeak-ng may pronounce slightly differently.
#
# Usage: dataflows/make_sample.sh [output.wav]   (default: next to this script)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/sample_speech.wav}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

phrases=("Hello from remote media." "Testing voice detection." "Then silence again.")
# Silence before each phrase, after the last one.
lead=(0.3 0.7 0.7)
tail=0.3

parts=()
for i in "${!phrases[@]}"; do
  # espeak-ng writes 22050 Hz 16-bit mono; voice en-us, 170 words per minute.
  espeak-ng -v en-us -s 170 -w "$work/raw$i.wav" "${phrases[$i]}"
  # Trim espeak's own leading/trailing silence (below 0.1 % of full scale), resample to 48 kHz
  # with SoX's very-high-quality resampler, then pad with exact pauses.
  pad_after=0
  if [ "$i" -eq $((${#phrases[@]} - 1)) ]; then pad_after=$tail; fi
  sox -D "$work/raw$i.wav" -r 48000 -b 16 "$work/p$i.wav" \
    silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse \
    rate -v 48k pad "${lead[$i]}" "$pad_after"
  parts+=("$work/p$i.wav")
done

# Concatenate and bring the speech peak to -3 dBFS.
sox -D "${parts[@]}" "$work/speech.wav" gain -n -3

# Pink noise of exactly the same length: SoX's default pink noise is about -13 dBFS RMS,
# so -27 dB puts it at about -40 dBFS RMS.
samples="$(soxi -s "$work/speech.wav")"
sox -R -D -n -r 48000 -c 1 -b 16 "$work/noise.wav" synth "${samples}s" pinknoise gain -27

# Mix at unit volume each (plain -m would halve both).
sox -D -m -v 1 "$work/speech.wav" -v 1 "$work/noise.wav" -r 48000 -c 1 -b 16 -e signed-integer "$out"

soxi "$out"
