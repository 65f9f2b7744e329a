#!/usr/bin/env python3
"""Writes every file generated from ``python/remotemedia/schema.json`` (``remotemedia schema``'s output).

    target/debug/remotemedia schema > python/remotemedia/schema.json   # after changing a fact in Rust
    python scripts/gen.py            # rewrite the generated files and blocks
    python scripts/gen.py --check    # exit 1, naming each file that differs (tests/python/test_schema.py)

Generated: ``python/remotemedia/nodes.pyi`` (the node classes' typed signatures) and, between
``<!-- generated: NAME -->`` / ``<!-- /generated -->`` markers, the params table of each node in
docs/nodes.md, the config table in docs/manifest.md and the engine switches in docs/architecture.md; the lists of known node types in the
example errors of docs/manifest.md and docs/cli.md are rewritten in place. The Python runtime reads
the schema itself (``remotemedia._schema``), so it has no generated copy. Standard library only, so
it runs without the native extension. ``--schema`` and ``--root`` point it at other copies (the test
that a new param reaches every output runs it on a modified schema in a temporary directory).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
from typing import Any, Callable, Dict, List

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SCHEMA = os.path.join("python", "remotemedia", "schema.json")
STUB = os.path.join("python", "remotemedia", "nodes.pyi")
NODES_PY = os.path.join("python", "remotemedia", "nodes.py")
NODES_MD = os.path.join("docs", "nodes.md")
MANIFEST_MD = os.path.join("docs", "manifest.md")
CLI_MD = os.path.join("docs", "cli.md")
ARCHITECTURE_MD = os.path.join("docs", "architecture.md")
END = "<!-- /generated -->"


# ---- values as the docs and stubs write them ----

def number(x: Any) -> str:
    """12.0 -> 12, 0.25 -> 0.25 (the docs' way)."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return str(x)


def kind_text(p: Dict[str, Any]) -> str:
    k = p["kind"]
    if k == "int":
        return f"integer {p['min']}..={p['max']}"
    if k == "float":
        return f"number {number(p['min'])}..={number(p['max'])}"
    if k == "choice":
        return ", ".join(f'`"{c}"`' for c in p["choices"])
    if k == "int_choice":
        return "one of " + ", ".join(str(c) for c in p["choices"])
    if k == "bool":
        return "bool"
    if k == "list":
        return f"list of {kind_text(p['item'])} ({p['min_len']}..={p['max_len']} items)"
    if k == "tagged":
        return f"object with `{p['tag']}`: " + ", ".join(f'`"{v["name"]}"`' for v in p["variants"])
    return "any JSON value"


def default_text(p: Dict[str, Any]) -> str:
    if p.get("required"):
        return "—"
    if p.get("default") is None:
        return "none"
    d = p["default"]
    return f"`{number(d) if isinstance(d, float) else json.dumps(d)}`"


def table(rows: List[List[str]], header: List[str]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(out)


def params_table(t: Dict[str, Any]) -> str:
    rows = [[f"`{p['name']}`", "yes" if p["required"] else "no", kind_text(p), default_text(p), p["doc"]] for p in t["params"]]
    return table(rows, ["param", "required", "type / range", "default", "meaning"])


def switches_table(switches: List[Dict[str, Any]]) -> str:
    def takes(s: Dict[str, Any]) -> str:
        return "1, true, on / 0, false, off" if s["kind"] == "flag" else f"whole µs, 0..={s['max']}"

    rows = [[f"`{s['name']}`", takes(s), "each pool" if s["per_pool"] else "the process", s["doc"]] for s in switches]
    return table(rows, ["variable", "takes", "read for", "what it does"])


def config_table(config: List[Dict[str, Any]]) -> str:
    rows = [[f"`{f['name']}`", kind_text(f), default_text(f), "yes" if f["per_node"] else "no", f["doc"]] for f in config]
    return table(rows, ["field", "type / range", "default", "per node (`reliability`)", "meaning"])


# ---- the stub ----

def py_type(p: Dict[str, Any]) -> str:
    k = p["kind"]
    base = {
        "int": "int",
        "float": "float",
        "bool": "bool",
        "any": "Any",
        "tagged": "Dict[str, Any]",
    }.get(k)
    if k in ("choice", "int_choice"):
        base = "Literal[" + ", ".join(json.dumps(c) for c in p["choices"]) + "]"
    if k == "list":
        base = f"Sequence[{py_type(p['item'])}]"
    return base or "Any"


def positional_classes(root: str) -> set:
    """Builder classes whose params may also be given by position: those nodes.py's
    ``POSITIONAL`` tuple names (read without importing the package). Every other builder takes
    keywords only."""
    path = os.path.join(root, NODES_PY)
    if not os.path.exists(path):
        return set()
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    return {name for a in tree.body if isinstance(a, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "POSITIONAL" for t in a.targets)
            for name in ast.literal_eval(a.value)}


#: The line after which nodes.pyi is generated; what stands above it (the custom-node API) is kept.
STUB_MARK = "# ---- generated by scripts/gen.py from schema.json (docs/architecture.md): do not edit below ----\n"


def stub(schema: Dict[str, Any], root: str, old: str) -> str:
    """nodes.pyi: its hand-written head, then one typed class per built-in node and ``__all__``."""
    if STUB_MARK not in old:
        raise SystemExit(f"{STUB}: no line '{STUB_MARK.strip()}' (the generated classes go below it)")
    positional = positional_classes(root)
    out = [old[: old.index(STUB_MARK) + len(STUB_MARK)]]
    names = []
    for t in schema["node_types"]:
        names.append(t["name"])
        args = ["self"]
        star = False
        if t["name"] not in positional:
            args.append("*")
            star = True
        # Required params first, as a positional signature must have them.
        for p in sorted(t["params"], key=lambda p: not p["required"]):
            ty = py_type(p)
            if p["required"]:
                args.append(f"{p['name']}: {ty}")
            elif p.get("default") is None:
                args.append(f"{p['name']}: Optional[{ty}] = None")
            else:
                args.append(f"{p['name']}: {ty} = {json.dumps(p['default']).replace('true', 'True').replace('false', 'False')}")
        if not star:
            args.append("*")
        args += ["node_id: Optional[str] = None", "runtime_hint: Optional[str] = None"]
        doc = t["doc"].replace('"""', "'''").replace("\\", "\\\\")
        out.append(f'\n@final\nclass {t["name"]}(BuiltinNode):\n    """{doc}"""\n'
                   f'    def __init__({", ".join(args)}) -> None: ...\n')
    out.append("\nBUILTIN_TYPES: Dict[str, Type[BuiltinNode]]\n")
    public = ["Node", "BuiltinNode", "register_node", "unregister_node", "registered_nodes", *names, "BUILTIN_TYPES"]
    out.append("\n__all__ = [\n" + "".join(f'    "{n}",\n' for n in public) + "]\n")
    return "".join(out)


# ---- the docs ----

def replace_block(text: str, name: str, body: str, path: str) -> str:
    start = f"<!-- generated: {name} -->"
    i = text.find(start)
    j = text.find(END, i)
    if i < 0 or j < 0:
        raise SystemExit(f"{path}: no '{start}' ... '{END}' block (add one where the table goes)")
    return text[: i + len(start)] + "\n" + body + "\n" + text[j:]


def nodes_md(schema: Dict[str, Any], text: str) -> str:
    for t in schema["node_types"]:
        if t["params"]:
            text = replace_block(text, f"params {t['name']}", params_table(t), NODES_MD)
    return text


def manifest_md(schema: Dict[str, Any], text: str) -> str:
    return known_types(schema, replace_block(text, "config", config_table(schema["config"]), MANIFEST_MD))


def known_types(schema: Dict[str, Any], text: str) -> str:
    """The list in an example "expected a known node type: A, B, ..." error: every built-in type,
    plus the Python node types the example itself registered."""
    builtin = {t["name"] for t in schema["node_types"]}

    def fix(m: "re.Match[str]") -> str:
        custom = {n for n in m.group(1).split(", ") if n in CUSTOM_IN_DOCS}
        return f"expected a known node type: {', '.join(sorted(builtin | custom))}, found"

    return re.sub(r"expected a known node type: ([A-Za-z, ]+), found", fix, text)


#: Python node types the docs' examples register (so they appear in that example's list).
CUSTOM_IN_DOCS = {"CaptionNode"}


def outputs(schema: Dict[str, Any], root: str) -> Dict[str, Callable[[str], str]]:
    """Each generated file, relative to the root, and how its new text follows from its current text."""
    return {
        STUB: lambda old: stub(schema, root, old),
        NODES_MD: lambda old: nodes_md(schema, old),
        MANIFEST_MD: lambda old: manifest_md(schema, old),
        CLI_MD: lambda old: known_types(schema, old),
        ARCHITECTURE_MD: lambda old: replace_block(old, "switches", switches_table(schema["engine_switches"]), ARCHITECTURE_MD),
    }


def generate(schema_path: str, root: str, check: bool) -> List[str]:
    """Writes (or, with check, only compares) every generated file; returns those that differ."""
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    stale = []
    for rel, make in outputs(schema, root).items():
        path = os.path.join(root, rel)
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
        new = make(old)
        if new != old:
            stale.append(rel)
            if not check:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(new)
    return stale


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated file differs")
    ap.add_argument("--root", default=REPO, help="the tree to write into (default: this repository)")
    ap.add_argument("--schema", default=None, help="the schema to read (default: ROOT/python/remotemedia/schema.json)")
    a = ap.parse_args(argv)
    stale = generate(a.schema or os.path.join(a.root, SCHEMA), a.root, a.check)
    for rel in stale:
        print(f"{'stale' if a.check else 'wrote'}: {rel}")
    if a.check and stale:
        print("regenerate: python scripts/gen.py (after: target/debug/remotemedia schema > python/remotemedia/schema.json)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
