"""Fuzzes the manifest readers of both runtimes against each other: texts made by mutating real
manifests (dataflows/, fuzz/corpus/manifest/) -- byte edits, deep nesting, YAML aliases and
anchors, long strings, repeated keys, many values -- read by the native reader
(``_native.validate_manifest``, src/manifest/) and the pure-Python one (``_pure.tree`` +
``_pure.validate``). The verdicts must agree on every text: both accept it with the same nodes
(ids, types, params with defaults), or both raise ``ManifestError``, and when either one's problem is a limit (size,
nesting, values, string length, nodes, edges) both have the same problems -- except for a text
that also has a syntax error further on, which the native reader (building the tree as it parses)
meets after the limit and PyYAML (composing the document first) before it: counted, not a
failure. Any other exception is a failure. (Other syntax errors keep each parser's own position and words, by design: docs/manifest.md.)

    python scripts/fuzz_manifests.py --seconds 300 [--seed 1]
    python scripts/fuzz_manifests.py --count 40 --seed 7      # what tests/python/test_limits.py runs
"""

import argparse
import glob
import json
import os
import random
import sys
import time

from remotemedia import ManifestError, _runtime
from remotemedia._pure.schema import builtin_types
from remotemedia._pure.tree import parse_str
from remotemedia._pure.validate import validate

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
LIMIT_WORDS = ("a manifest of at most", "nested at most", "values (lists, mappings", "strings of at most", "at most 10000 nodes",
               "at most 100000 edges", "UTF-8 text")


def seeds():
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "dataflows", "*.*ml")) + glob.glob(os.path.join(ROOT, "dataflows", "*.json"))
                       + glob.glob(os.path.join(ROOT, "fuzz", "corpus", "manifest", "*"))):
        try:
            with open(path, encoding="utf-8") as f:
                out.append(f.read())
        except (UnicodeDecodeError, OSError):
            pass
    return out


def mutate(r, text):
    for _ in range(r.choice([1, 1, 1, 2, 3])):
        i = r.randint(0, len(text))
        op = r.randrange(9)
        if op == 0 and text:  # delete a run
            text = text[:i] + text[i + r.randint(1, 8):]
        elif op == 1:  # insert punctuation
            text = text[:i] + "".join(r.choice("[]{}:,-&*!|>'\"#\n \t?%@`\\") for _ in range(r.randint(1, 4))) + text[i:]
        elif op == 2:  # deep nesting, flow or block
            n = r.choice([63, 64, 65, 200, 5000])
            text = text[:i] + (r.choice(["[", "{a: "]) * n if r.random() < 0.7 else "- " * n) + text[i:]
        elif op == 3:  # an anchor and aliases
            text = text[:i] + r.choice([" &a [1, 2, 3]", " *a", " &b [*a, *a, *a, *a]", " &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]", " &x [*x]"]) + text[i:]
        elif op == 4:  # a long string
            n = r.choice([65535, 65536, 65537, 70000])
            text = text[:i] + " " + ("x" * n if r.random() < 0.5 else '"' + "é" * (n // 2) + '"') + text[i:]
        elif op == 5:  # many values
            text = text[:i] + " [" + ",".join(["0"] * r.choice([10, 999_999, 1_000_001])) + "]" + text[i:]
        elif op == 6 and text:  # duplicate a line
            lines = text.split("\n")
            k = r.randrange(len(lines))
            lines.insert(k, lines[k])
            text = "\n".join(lines)
        elif op == 7:  # odd scalars
            text = text[:i] + r.choice([" .nan", " .inf", " 1e400", " 0x1F", " 99999999999999999999999", " ~", " null", " !!str 1", " 2001-12-14", " \x07"]) + text[i:]
        else:  # swap two characters
            if len(text) > 2:
                j = r.randrange(len(text) - 1)
                text = text[:j] + text[j + 1] + text[j] + text[j + 2:]
    return text


def native_verdict(native, text):
    try:
        canonical = json.loads(native.validate_manifest(text, None))
        nodes = [(n["id"], n["type"], n["params"]) for n in canonical["nodes"]]
        edges = [(e["from"], e["to"], e.get("output_key"), e.get("input_key")) for e in canonical["edges"]]
        return ("ok", (nodes, edges))
    except ManifestError as e:
        return ("ManifestError", [tuple(p) for p in e.problems])


def pure_verdict(text, types):
    try:
        g = validate(parse_str(text), types)
        # (The pure graph keeps optional params without a default as None; the canonical JSON omits them.)
        nodes = [(n.id, n.type.name, {k: v for k, v in n.params.items() if v is not None}) for n in g.nodes]
        edges = [(g.nodes[e.src].id, g.nodes[e.dst].id, e.output_key, e.port if len(g.nodes[e.dst].inputs) > 1 or e.port != "in" else None)
                 for e in g.edges]
        return ("ok", (nodes, edges))
    except ManifestError as e:
        return ("ManifestError", [tuple(p) for p in e.problems])


def is_limit(problems):
    return any(any(w in p[1] for w in LIMIT_WORDS) for p in problems)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    native = _runtime.native_module()
    types = builtin_types()
    base = seeds()
    start = time.monotonic()
    n = accepted = refused = limits = split = failures = 0
    while (n < args.count) if args.count else (time.monotonic() - start < args.seconds):
        seed = args.seed * 1_000_003 + n
        r = random.Random(seed)
        text = mutate(r, r.choice(base))
        got = []
        for f in (lambda: native_verdict(native, text), lambda: pure_verdict(text, types)):
            try:
                got.append(f())
            except Exception as e:  # noqa: BLE001 -- any other class is a finding
                got.append(("other", f"{type(e).__name__}: {e}"[:300]))
        (ka, va), (kb, vb) = got
        bad = ka != kb or ka == "other" or kb == "other" or (ka == "ok" and va[0] != vb[0])
        if not bad and ka == "ManifestError" and (is_limit(va) or is_limit(vb)):
            limits += 1
            # A text with a syntax error after a limit is crossed: the native reader builds the
            # tree as it parses and meets the limit first, PyYAML composes the whole document
            # first and meets the syntax error first. Both refuse it; either problem is right.
            either = {p[1] for p in va + vb} & {"valid YAML", "valid JSON"} and len(va) == len(vb) == 1
            if either and va != vb:
                split += 1
            bad = va != vb and not either
        if bad:
            failures += 1
            print(f"MISMATCH seed {seed}: native {got[0]!r:.400} / pure {got[1]!r:.400}", flush=True)
        accepted += ka == "ok"
        refused += ka == "ManifestError"
        n += 1
    print(f"{n} texts, {accepted} accepted by both, {refused} refused ({limits} for a limit, same problems), "
          f"{split} of them a limit on one side and a later syntax error on the other, {failures} mismatches, {time.monotonic() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
