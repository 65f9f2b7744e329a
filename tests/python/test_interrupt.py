"""Ctrl-C during a blocking call: ``run_sync`` and ``run_batch`` raise ``KeyboardInterrupt`` while
the work is still going on (the native engine looks at signals while it waits instead of only when
the call ends), stop handing batch items over, and leave the pipeline usable. Each case runs in a
subprocess that SIGINTs itself once its node has started; the subprocess is bounded in time."""

import signal
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import numpy as np
    from remotemedia import Audio, Node, Pipeline

    calls = []
    release = threading.Event()
    started = threading.Event()

    class Slow(Node):
        '''Sleeps (GIL released) until released or for `each` seconds; counts its calls.'''
        def process(self, audio):
            calls.append(1)
            started.set()
            release.wait(EACH)
            return Audio(audio.samples * np.float32(0.5), audio.sample_rate)

    def interrupt_when_started():
        started.wait(60)
        os.kill(os.getpid(), signal.SIGINT)

    p = Pipeline([Slow(node_id="slow")], runtime_hint=RUNTIME, workers=2)
    x = np.full(16000, 0.5, dtype=np.float32)
    threading.Thread(target=interrupt_when_started, daemon=True).start()
    try:
        if CALL == "run_sync":
            p.run_sync((x, 16000))
        else:
            p.run_batch([(x, 16000)] * ITEMS)
        print("finished", len(calls))
    except KeyboardInterrupt:
        print("interrupted", len(calls))
    release.set()
    # The pipeline still runs the next call.
    out = p.run_sync((x, 16000))
    print("next", float(out["slow"].samples[0]))
    """
)


@pytest.mark.parametrize("call", ["run_sync", "run_batch"])
def test_ctrl_c_raises_keyboard_interrupt_while_the_call_waits(runtime, call):
    # run_sync: one call that would block for 60 s; run_batch: 400 items of 0.05 s on 2 workers
    # (10 s in all), interrupted once the first has started.
    each, items = (60.0, 1) if call == "run_sync" else (0.05, 400)
    script = f"RUNTIME = {runtime!r}\nCALL = {call!r}\nEACH = {each}\nITEMS = {items}\n" + CHILD
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    verdict, count = lines[0].split()
    assert verdict == "interrupted", done.stdout
    # Unstarted batch items were never handed over (the window holds far fewer than 400).
    assert int(count) < items or call == "run_sync", done.stdout
    assert lines[1] == "next 0.25", done.stdout
