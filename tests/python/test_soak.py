"""The soak test in a reduced form (a few seconds per runtime): 8 threads x 100 runs on one shared
pipeline and on separate pipelines, 20 pipelines created and dropped, with a Python node that raises
for some inputs. No deadlock, no unexpected error, every result equal to the single-threaded one,
and good runs after the failing ones. The full form is ``scripts/soak.py`` (8 x 2000 runs, 100
pipelines); its measured figures are in docs/reliability.md ("Testing against bad input and load").
"""

import importlib.util
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location("soak", Path(__file__).resolve().parents[2] / "scripts" / "soak.py")
soak_mod = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(soak_mod)


def test_reduced_soak(runtime):
    s = soak_mod.soak(runtime, threads=8, runs=100, pipelines=20, warmup_runs=10, timeout_s=120)
    assert s["runtime"] == runtime
    for name in ("warmup", "shared", "separate"):
        ph = s[name]
        assert ph["hung_threads"] == 0, f"{name}: {ph['hung_threads']} threads still running after 120 s"
        assert ph["thread_failures"] == [], name
        assert ph["mismatches"] == [], name
    for name in ("shared", "separate"):
        ph = s[name]
        assert ph["runs"] == 800
        # Inputs cycle over 14, of which 2 are poisoned: each thread's 100 runs meet them 14 or 15 times.
        assert 8 * 14 <= ph["expected_node_errors"] <= 8 * 15
    assert s["churn"]["mismatches"] == []
    assert s["good_after_poison"]
    # The soak's pipelines turn the breaker off (see make_pipeline): it must not have opened.
    assert s["breaker_opens"] == 0
    assert s["ok"]
    # Memory, not time: the process must not keep what 1,600 runs and 20 pipelines allocated.
    assert s["rss_growth_pct"] < 10.0, f"RSS {s['rss_start_mb']:.1f} -> {s['rss_end_mb']:.1f} MB"
