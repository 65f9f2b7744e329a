"""Fuzzes the audio file readers on both runtimes: files of every format the native reader takes
(WAV variants, FLAC, ALAC, AIFF, MP3, Ogg Vorbis, AAC, Opus; made by soundfile and ffmpeg from a
seeded signal, as ``tests/python/audio_files.py`` does), mutated at random (cut short, bytes
flipped or overwritten, runs of 0x00/0xFF, slices repeated or dropped, junk inserted), each read
by ``remotemedia.load(path, dtype=None)`` on the native runtime (symphonia and ``src/audio_io``)
and on the pure-Python one (``remotemedia.wav``).

Every input must get:

* natively: decoded audio or an ``InputError`` (anything else, a crash or a read taking longer
  than ``--timeout`` is a finding); the reads run in a worker process, restarted after a crash;
* on the pure runtime, for WAV content (``RIFF``/``RF64`` ... ``WAVE``): the same verdict (the
  same samples, or an ``InputError`` with the same message up to the list of formats each runtime
  reads); WAVs whose codec only the extension decodes (A-law, µ-law, ADPCM) are counted apart, as
  in ``tests/python/test_wav_fuzz.py``. For other content, which the pure runtime does not decode:
  a refusal in the package's classes (``RuntimeUnavailableError`` "reads only WAV" when it
  recognises the format, ``InputError`` when the damage hides it).

The seeds are decoded first and must all decode natively, except Opus, which the native reader
refuses by design (symphonia has no Opus decoder): its mutations still must not crash or hang.

    python scripts/fuzz_files.py --seconds 300 [--seed 1]
    python scripts/fuzz_files.py --count 160 --seed 3      # what tests/python/test_file_fuzz.py runs

Prints a summary line per format family and exits 1 on any finding. docs/reliability.md records
runs with their exec counts.
"""

import argparse
import hashlib
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def verdict(path, runtime):
    import remotemedia as rm

    try:
        a = rm.load(path, dtype=None, runtime_hint=runtime)
        digest = hashlib.sha256(a.samples.tobytes()).hexdigest()[:16]
        return ["ok", a.sample_rate, a.samples.dtype.str, list(a.samples.shape), digest]
    except rm.InputError as e:
        # The list of formats a runtime reads, after the verdict, differs by runtime on purpose.
        return ["InputError", str(e).split("; remotemedia reads ")[0]]
    except rm.RuntimeUnavailableError as e:
        return ["RuntimeUnavailableError", str(e)]
    except Exception as e:  # a finding: reported with the class
        return [type(e).__name__, str(e)[:300]]


def worker():
    """Reads one path per line on stdin; prints [native, pure] verdicts as one JSON line."""
    for line in sys.stdin:
        path = line.rstrip("\n")
        out = [verdict(path, "rust"), verdict(path, "python")]
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


class Worker:
    def __init__(self):
        self.p = None

    def start(self):
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def ask(self, path, timeout):
        """The verdicts, or ("crash", rc) / ("hang", timeout); the worker is restarted after either."""
        if self.p is None:
            self.start()
        self.p.stdin.write(path + "\n")
        self.p.stdin.flush()
        ready, _, _ = select.select([self.p.stdout], [], [], timeout)
        line = self.p.stdout.readline() if ready else ""
        if line:
            return json.loads(line)
        if ready:  # EOF: the worker died on this input
            rc = self.p.wait()
            self.p = None
            return ("crash", rc)
        self.p.kill()
        self.p.wait()
        self.p = None
        return ("hang", timeout)

    def close(self):
        if self.p is not None:
            self.p.stdin.close()
            self.p.wait()


def seeds(folder):
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))
    from audio_files import make_all

    made = make_all(folder, rate=16000, seconds=0.25, channels=2)
    return {name: (os.path.splitext(m.path)[1], open(m.path, "rb").read()) for name, m in made.items()}


def family(name):
    for f in ("wav", "flac", "alac", "aiff", "mp3", "vorbis", "aac", "opus"):
        if name.startswith(f):
            return f
    return name


def mutate(r, b):
    b = bytearray(b)
    for _ in range(r.randint(1, 3)):
        kind = r.randrange(7)
        # Half the edits land in the first 512 bytes, where the headers are.
        at = r.randrange(min(len(b), 512)) if b and r.random() < 0.5 else (r.randrange(len(b)) if b else 0)
        if kind == 0:
            b = b[: r.randint(0, len(b))]
        elif kind == 1 and b:
            for _ in range(r.randint(1, 8)):
                b[r.randrange(len(b))] ^= 1 << r.randrange(8)
        elif kind == 2 and b:
            n = r.randint(1, 64)
            b[at:at + n] = bytes([r.choice([0, 0xFF, r.randrange(256)])]) * len(b[at:at + n])
        elif kind == 3 and b:
            n = r.randint(1, 256)
            b[at:at] = b[at:at + n] * r.randint(1, 4)
        elif kind == 4 and b:
            del b[at:at + r.randint(1, 256)]
        elif kind == 5:
            b[at:at] = bytes(r.randrange(256) for _ in range(r.randint(1, 32)))
        elif kind == 6 and len(b) >= 8:
            # A 32-bit size-like field set to an edge value (little- or big-endian).
            v = r.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, len(b), len(b) * 2])
            at = min(at, len(b) - 4)
            b[at:at + 4] = v.to_bytes(4, r.choice(["little", "big"]))
    return bytes(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--count", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds one read may take before it is a hang")
    ap.add_argument("--worker", action="store_true")
    args = ap.parse_args()
    if args.worker:
        return worker()
    if args.seconds is None and args.count is None:
        args.count = 160
    r = random.Random(args.seed)
    tmp = tempfile.mkdtemp(prefix="remotemedia-fuzz-files-")
    start = time.monotonic()
    found = seeds(os.path.join(tmp, "seeds"))
    names = sorted(found)
    w = Worker()
    stats = {}
    findings = []
    n = 0
    try:
        while True:
            if args.count is not None and n >= args.count:
                break
            if args.seconds is not None and time.monotonic() - start >= args.seconds:
                break
            name = names[n % len(names)]
            ext, data = found[name]
            # The unmutated seeds first: each must decode on the native runtime.
            data = data if n < len(names) else mutate(r, data)
            path = os.path.join(tmp, f"in{n % 4}{ext}")
            with open(path, "wb") as f:
                f.write(data)
            n += 1
            s = stats.setdefault(family(name), {"execs": 0, "ok": 0, "refused": 0, "native_only": 0, "codec": 0})
            s["execs"] += 1
            got = w.ask(path, args.timeout)
            if isinstance(got, tuple):
                findings.append((name, n, got, data))
                continue
            native, pure = got
            if n <= len(names) and native[0] != "ok" and family(name) != "opus":
                findings.append((name, n, ("seed does not decode", native), data))
                continue
            if native[0] not in ("ok", "InputError"):
                findings.append((name, n, ("native", native), data))
                continue
            s["ok" if native[0] == "ok" else "refused"] += 1
            wav_content = data[:4] in (b"RIFF", b"RF64") and data[8:12] == b"WAVE"
            if not wav_content:
                if pure[0] in ("RuntimeUnavailableError", "InputError"):
                    s["native_only"] += 1
                else:
                    findings.append((name, n, ("pure", pure), data))
            elif pure[0] == "RuntimeUnavailableError" and "reads only WAV" in pure[1]:
                findings.append((name, n, ("WAV content not read by the pure runtime", native, pure), data))
            elif pure[0] == "InputError" and "which only the native extension decodes" in pure[1]:
                s["codec"] += 1
            elif pure != native:
                findings.append((name, n, ("differ", native, pure), data))
    finally:
        w.close()
    took = time.monotonic() - start
    for f, s in sorted(stats.items()):
        print(f"{f:7s} execs {s['execs']:6d}  decoded {s['ok']:6d}  refused {s['refused']:6d}  "
              f"pure runtime: not WAV {s['native_only']:6d}, WAV codec of the extension {s['codec']:4d}")
    total = sum(s["execs"] for s in stats.values())
    print(f"seed {args.seed}: {total} files in {took:.1f} s ({total / max(took, 1e-9):.1f}/s), {len(findings)} findings")
    for name, i, what, data in findings[:10]:
        keep = os.path.join(tmp, f"finding_{i}_{name}")
        with open(keep, "wb") as f:
            f.write(data)
        print(f"FINDING {name} #{i}: {what} (input kept as {keep})")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
