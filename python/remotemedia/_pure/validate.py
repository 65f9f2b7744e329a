"""Manifest validation, a line-by-line port of the Rust validator (``src/manifest/validate.rs``):
walks the tree, collects EVERY problem as ``(path, expected, found)`` with the very same wording,
in the same order, and raises one :class:`ManifestError`, or returns the :class:`Graph`.

A manifest's problems must not depend on the runtime, so when the Rust wording changes this file
changes with it (``tests/python/test_manifest_parity.py`` compares the two on many bad manifests).
What only Python trees can hold (numpy scalars, tuples, NaN, arbitrary objects) is handled here
without a Rust counterpart.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ManifestError, Problem
from .._schema import SCHEMA
from ..limits import MANIFEST_EDGES, MANIFEST_NODES
from .graph import Graph, GraphEdge, GraphNode
from .schema import NodeTypeSpec, ParamSpec, describe_kind, describe_value, format_float, quote
from .tree import limit_problems

__all__ = ["validate", "SUPPORTED_VERSIONS", "MAX_PROBLEMS", "closest", "check_param"]

_MANIFEST = SCHEMA["manifest"]
SUPPORTED_VERSIONS = tuple(_MANIFEST["versions"])
#: Problems listed in full; beyond this a last entry counts the rest.
MAX_PROBLEMS = 100
TOP_FIELDS = tuple(_MANIFEST["top_fields"])
NODE_FIELDS = tuple(_MANIFEST["node_fields"])
EDGE_FIELDS = tuple(_MANIFEST["edge_fields"])
RUNTIME_HINTS = tuple(_MANIFEST["runtime_hints"])
DEFAULT_PORT = _MANIFEST["default_port"]

#: The ``config`` fields, their kinds and ranges (``config_fields`` in Rust), in the Rust order.
CONFIG_PARAMS = [ParamSpec.from_dict({k: v for k, v in f.items() if k != "default"}) for f in SCHEMA["config"]]
CONFIG_FIELDS = tuple(p.name for p in CONFIG_PARAMS)
#: Fields of a node's ``reliability`` entry: the retry and breaker fields of ``config``.
RELIABILITY_FIELDS = tuple(f["name"] for f in SCHEMA["config"] if f["per_node"])
_CONFIG_KINDS = {p.name: p for p in CONFIG_PARAMS}
#: What ``PipelineConfig::default()`` holds (the retry delays matter to the cross-field check).
_CONFIG_DEFAULTS = {f["name"]: f["default"] for f in SCHEMA["config"]}

_I64_MIN, _I64_MAX, _U64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
#: Nodes of a cycle named in its problem; the others are counted.
_CYCLE_SHOWN = 8


def validate(tree: Any, types: Dict[str, NodeTypeSpec]) -> Graph:
    """Checks a manifest tree against the node ``types``; raises ManifestError listing every problem
    (up to :data:`MAX_PROBLEMS`, then a count)."""
    # A tree is held to the manifest limits before anything walks it (texts were held to them
    # while they were read).
    limit = limit_problems(tree)
    if limit is not None:
        raise ManifestError([limit])
    p = _Problems()
    graph = _Validator(p, types).check_manifest(_normalise(tree))
    if graph is not None and p.is_empty():
        return graph
    if p.is_empty():
        p.add("manifest", "a manifest the validator can build a graph from", "an internal inconsistency")
    raise ManifestError(p.finish())


# ---- problem collection and wording ----


class _Problems:
    def __init__(self) -> None:
        self.list: List[Problem] = []
        self.omitted = 0

    def add(self, path: str, expected: str, found: str) -> None:
        if len(self.list) < MAX_PROBLEMS:
            self.list.append(Problem(path, expected, found))
        else:
            self.omitted += 1

    def is_empty(self) -> bool:
        return not self.list and self.omitted == 0

    def full(self) -> bool:
        """No further problem will be listed: suggestions can be skipped."""
        return len(self.list) >= MAX_PROBLEMS

    def count(self) -> int:
        return len(self.list) + self.omitted

    def finish(self) -> List[Problem]:
        out = list(self.list)
        if self.omitted:
            n = self.omitted
            out.append(Problem("manifest", f"at most {MAX_PROBLEMS} problems listed",
                               f"{n} more problem{'' if n == 1 else 's'} not listed"))
        return out


def _describe_opt(present: bool, v: Any) -> str:
    return describe_value(v) if present else "nothing"


def _plain_key(key: str) -> bool:
    return bool(key) and len(key) <= 60 and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)


def join(base: str, key: str) -> str:
    """``base.key``, or ``base["odd key"]`` when the key is not a plain identifier."""
    plain = _plain_key(key)
    if not base:
        return key if plain else f"[{quote(key)}]"
    return f"{base}.{key}" if plain else f"{base}[{quote(key)}]"


def short(s: str) -> str:
    """A name as it is (no quotes), shortened if long (ids can be any text)."""
    return s[:60] + "…" if len(s) > 60 else s


def list_names(names: Sequence[str]) -> str:
    """Names as a comma-separated list, shortened when there are very many."""
    s = ", ".join(short(x) for x in names[:40])
    if len(names) > 40:
        s += f", … ({len(names)} in all)"
    return s


def _distance(a: str, b: str, limit: int) -> Optional[int]:
    """Levenshtein distance over lowercase characters, or None when above ``limit``."""
    a, b = a.lower(), b.lower()
    if abs(len(a) - len(b)) > limit:
        return None
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a):
        cur = [i + 1] + [0] * len(b)
        for j, cb in enumerate(b):
            cur[j + 1] = min(prev[j] + (ca != cb), prev[j + 1] + 1, cur[j] + 1)
        prev = cur
    d = prev[len(b)]
    return d if d <= limit else None


def closest(wrong: str, known: Iterable[str]) -> Optional[str]:
    """The known name closest to ``wrong``, if reasonably close: a few edits away (about a third of
    the name), or containing it (``Resample`` -> ``AudioResampleNode``)."""
    n = len(wrong)
    if n == 0 or n > 100:
        return None
    limit = 1 if n <= 3 else 2 if n <= 5 else max(n // 3, 2)
    lower = wrong.lower()
    best: Optional[Tuple[int, str]] = None
    for k, cand in enumerate(known):
        if k >= 2000:
            break
        if len(cand) > 100:
            continue
        score = _distance(wrong, cand, limit)
        if score is None and n >= 3 and n * 3 >= len(cand) and lower in cand.lower():
            score = limit + 1
        if score is not None and (best is None or score < best[0]):
            best = (score, cand)
    return best[1] if best else None


def did_you_mean(wrong: str, known: Iterable[str]) -> str:
    c = closest(wrong, known)
    return f" (did you mean {quote(c)}?)" if c is not None else ""


# ---- Python trees as the JSON trees Rust sees ----


def _key_text(k: Any) -> Any:
    """A mapping key as the Rust tree holds it (YAML's number and boolean keys become text)."""
    if isinstance(k, (bool, np.bool_)):
        return "true" if k else "false"
    if isinstance(k, (numbers.Integral, numbers.Real)) and not isinstance(k, str):
        return describe_value(k)
    return k if isinstance(k, str) else str(k)


def _normalise(v: Any) -> Any:
    """numpy scalars as Python numbers, tuples as lists, mapping keys as strings; other values as
    they are (non-JSON objects are reported where they would be accepted)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, (list, tuple)):
        return [_normalise(x) for x in v]
    if isinstance(v, dict):
        return {_key_text(k): _normalise(x) for k, x in v.items()}
    return v


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_int(v: Any) -> Tuple[Optional[int], str]:
    """``(integer, "")`` or ``(None, why)``, why in ``not_number``, ``not_finite``, ``fraction``,
    ``out_of_range`` (as ``as_int`` in Rust, which accepts integer-valued floats)."""
    if not _is_number(v):
        return None, "not_number"
    if isinstance(v, int):
        if _I64_MIN <= v <= _I64_MAX:
            return v, ""
        if 0 <= v <= _U64_MAX:
            return None, "out_of_range"
        # Beyond u64 serde_json reads a float, which is whole and out of range.
        return None, "out_of_range"
    if not math.isfinite(v):
        return None, "not_finite"
    if not v.is_integer():
        return None, "fraction"
    if -9.2e18 <= v <= 9.2e18:
        return int(v), ""
    return None, "out_of_range"


_RUST_WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def _rust_parses_f64(s: str) -> bool:
    """Whether Rust's ``s.trim().parse::<f64>()`` succeeds."""
    import re

    return re.fullmatch(r"[+-]?(?:inf|infinity|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?)",
                        s.strip(_RUST_WS), re.IGNORECASE | re.ASCII) is not None


def describe_mistyped(v: Any) -> str:
    """``found`` text for a value of the wrong type, with a hint when a number was written as a string."""
    base = describe_value(v)
    if isinstance(v, str):
        if _rust_parses_f64(v):
            return f"{base} (write numbers without quotes)"
        if v in ("true", "false"):
            return f"{base} (write true/false without quotes)"
    return base


def check_value(p: ParamSpec, v: Any) -> Tuple[bool, Any, str, str]:
    """``(True, normalised value, "", "")`` or ``(False, None, expected, found)``."""
    expected = describe_kind(p)
    if p.kind == "int":
        n, why = _as_int(v)
        if n is not None and p.min <= n <= p.max:
            return True, n, "", ""
        if n is not None or why == "out_of_range":
            return False, None, expected, describe_value(v)
        if why == "fraction":
            return False, None, f"{expected} (a whole number)", describe_value(v)
        if why == "not_finite":
            return False, None, f"{expected} (a finite number)", describe_value(v)
        return False, None, expected, describe_mistyped(v)
    if p.kind == "float":
        if _is_number(v):
            x = float(v) if not isinstance(v, int) or abs(v) < 2**1023 else math.inf
            if not math.isfinite(x):
                if isinstance(v, int):  # too large for a float: out of range, not "not finite"
                    return False, None, expected, describe_value(v)
                return False, None, f"{expected} (a finite number)", describe_value(v)
            if p.min <= x <= p.max:
                return True, x, "", ""
            return False, None, expected, describe_value(v)
        return False, None, expected, describe_mistyped(v)
    if p.kind == "choice":
        choices = tuple(p.choices or ())
        if isinstance(v, str) and v in choices:
            return True, v, "", ""
        if isinstance(v, str):
            return False, None, expected + did_you_mean(v, choices), describe_value(v)
        return False, None, expected, describe_value(v)
    if p.kind == "int_choice":
        n, why = _as_int(v)
        if n is not None and n in (p.choices or ()):
            return True, n, "", ""
        if why == "not_number":
            return False, None, expected, describe_mistyped(v)
        return False, None, expected, describe_value(v)
    if p.kind == "bool":
        if isinstance(v, bool):
            return True, v, "", ""
        return False, None, expected, describe_mistyped(v)
    return True, v, "", ""


def check_param(p: ParamSpec, value: Any) -> Tuple[bool, Any]:
    """``(ok, normalised value)``; integer-valued floats count as integers."""
    ok, norm, _, _ = check_value(p, _normalise(value))
    return ok, norm


# ---- the manifest, section by section ----


class _NodeDraft:
    __slots__ = ("id", "type", "params", "runtime_hint", "reliability")

    def __init__(self) -> None:
        self.id: Optional[str] = None
        self.type: Optional[NodeTypeSpec] = None
        self.params: Dict[str, Any] = {}
        self.runtime_hint = "auto"
        self.reliability: Optional[Dict[str, Any]] = None


class _EdgeDraft:
    __slots__ = ("src", "dst", "output_key", "input_key", "port", "port_failed")

    def __init__(self) -> None:
        self.src: Optional[int] = None
        self.dst: Optional[int] = None
        self.output_key: Optional[str] = None
        self.input_key: Optional[str] = None
        self.port: Optional[str] = None
        self.port_failed = False


class _Validator:
    def __init__(self, problems: _Problems, types: Dict[str, NodeTypeSpec]):
        self.p = problems
        self.types = types

    def add(self, path: str, expected: str, found: str) -> None:
        self.p.add(path, expected, found)

    def check_fields(self, base: str, obj: Dict[str, Any], allowed: Sequence[str], what: str) -> None:
        # serde_json's map keeps keys sorted: problems come in key order.
        for key in sorted(obj):
            if key not in allowed:
                self.add(join(base, key), f"one of the fields of {what}: {', '.join(allowed)}{did_you_mean(key, allowed)}",
                         f"the unknown field {quote(key)}")

    def json_value(self, v: Any, path: str) -> Any:
        """Flags what a JSON tree cannot hold, in values accepted as they are (Python trees only)."""
        if v is None or isinstance(v, (bool, str, int)):
            return v
        if isinstance(v, float):
            if not math.isfinite(v):
                self.add(path, "a finite number", describe_value(v))
            return v
        if isinstance(v, list):
            return [self.json_value(x, f"{path}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, dict):
            return {k: self.json_value(x, join(path, str(k))) for k, x in v.items()}
        self.add(path, "a JSON value", describe_value(v))
        return None

    def check_manifest(self, tree: Any) -> Optional[Graph]:
        if not isinstance(tree, dict):
            self.add("manifest", 'an object with "version" and "nodes"', describe_value(tree))
            return None
        self.check_fields("", tree, TOP_FIELDS, "a manifest")
        self.check_version("version" in tree, tree.get("version"))
        name = tree.get("name")
        if name is not None and not isinstance(name, str):
            self.add("name", "a string", describe_value(name))
        metadata = tree.get("metadata")
        if metadata is not None:
            if isinstance(metadata, dict):
                self.json_value(metadata, "metadata")
            else:
                self.add("metadata", "an object (free-form, ignored by the engine)", describe_value(metadata))
        if not self.check_counts(tree):
            # Nothing is built for a manifest with too many nodes or edges: its config is still checked.
            self.check_config(tree.get("config"))
            return None
        nodes = self.check_nodes("nodes" in tree, tree.get("nodes"))
        edges = self.check_edges(tree.get("edges"), nodes)
        self.check_named_ports(nodes, edges)
        self.check_cycles(nodes, edges)
        outputs = self.check_outputs(tree.get("outputs"), nodes)
        config = self.check_config(tree.get("config"))
        self.check_node_delays(nodes, config)
        if not self.p.is_empty():
            return None
        graph = self.build_graph(nodes, edges, config)
        if graph is not None:
            graph.declared_outputs = outputs
        return graph

    def check_counts(self, tree: Dict[str, Any]) -> bool:
        """At most MANIFEST_NODES nodes and MANIFEST_EDGES edges, checked before either is looked at."""
        ok = True
        for key, mx in (("nodes", MANIFEST_NODES), ("edges", MANIFEST_EDGES)):
            v = tree.get(key)
            if isinstance(v, list) and len(v) > mx:
                self.add(key, f"at most {mx} {key}", f"a list of {len(v)} {key}")
                ok = False
        return ok

    def check_version(self, present: bool, v: Any) -> None:
        if isinstance(v, str) and v in SUPPORTED_VERSIONS:
            return
        # YAML reads an unquoted `version: 1.0` as a number; accepted when its text matches.
        if _is_number(v) and describe_value(v) in SUPPORTED_VERSIONS:
            return
        expected = "a supported manifest version: " + ", ".join(quote(s) for s in SUPPORTED_VERSIONS)
        self.add("version", expected, _describe_opt(present, v))

    def check_nodes(self, present: bool, v: Any) -> List[_NodeDraft]:
        if isinstance(v, list) and not v:
            self.add("nodes", "a list of at least one node", "an empty list")
            return []
        if not isinstance(v, list):
            self.add("nodes", "a list of nodes", _describe_opt(present, v))
            return []
        type_names = sorted(self.types)
        first: Dict[str, int] = {}
        drafts: List[_NodeDraft] = []
        for i, node in enumerate(v):
            base = f"nodes[{i}]"
            d = _NodeDraft()
            drafts.append(d)
            if not isinstance(node, dict):
                self.add(base, 'a node object with "id" and "type"', describe_value(node))
                continue
            self.check_fields(base, node, NODE_FIELDS, "a node")

            node_id = node.get("id")
            if isinstance(node_id, str) and not node_id.strip(_RUST_WS):
                self.add(join(base, "id"), "a non-empty node id", describe_value(node_id))
            elif isinstance(node_id, str):
                if node_id in first:
                    self.add(join(base, "id"), "a unique node id", f"{quote(node_id)}, already the id of nodes[{first[node_id]}]")
                else:
                    first[node_id] = i
                    d.id = node_id
            else:
                self.add(join(base, "id"), "a node id (a string)", _describe_opt("id" in node, node_id))

            ty = node.get("type")
            if isinstance(ty, str):
                spec = self.types.get(ty)
                if spec is not None:
                    d.type = spec
                else:
                    guess = None if self.p.full() else closest(ty, type_names)
                    hint = (f"a known node type (did you mean {quote(guess)}?)" if guess is not None
                            else f"a known node type: {list_names(type_names)}")
                    self.add(join(base, "type"), hint, quote(ty))
            else:
                self.add(join(base, "type"), "a node type name (a string)", _describe_opt("type" in node, ty))

            params_path = join(base, "params")
            raw = node.get("params")
            given: Optional[Dict[str, Any]] = {}
            if isinstance(raw, dict):
                given = raw
            elif raw is not None:
                self.add(params_path, "an object of named params", describe_value(raw))
                given = None
            if d.type is not None and given is not None:
                d.params = self.check_params(params_path, d.type, given)

            hint_v = node.get("runtime_hint")
            if hint_v is None:
                pass
            elif isinstance(hint_v, str) and hint_v in RUNTIME_HINTS:
                d.runtime_hint = hint_v
            else:
                self.add(join(base, "runtime_hint"), 'one of "auto", "rust", "python"', describe_value(hint_v))
            d.reliability = self.check_reliability(join(base, "reliability"), node.get("reliability"))
        return drafts

    def check_reliability(self, base: str, v: Any) -> Optional[Dict[str, Any]]:
        """A node's ``reliability`` entry: the same kinds and ranges as the ``config`` fields."""
        if v is None:
            return None
        if not isinstance(v, dict):
            self.add(base, "an object of retry and circuit-breaker settings", describe_value(v))
            return None
        self.check_fields(base, v, RELIABILITY_FIELDS, "a node's reliability settings")
        out: Dict[str, Any] = {}
        for key in sorted(v):
            if key not in RELIABILITY_FIELDS or v[key] is None:
                continue
            ok, value, expected, found = check_value(_CONFIG_KINDS[key], v[key])
            if not ok:
                self.add(join(base, key), expected, found)
                continue
            out[key] = value
        return out

    def check_node_delays(self, nodes: List[_NodeDraft], config: Dict[str, Any]) -> None:
        """A node setting either retry delay must end up with a maximum at least its base."""
        for i, d in enumerate(nodes):
            r = d.reliability
            if r is None or ("retry_base_delay_ms" not in r and "retry_max_delay_ms" not in r):
                continue
            base = r.get("retry_base_delay_ms", config["retry_base_delay_ms"])
            mx = r.get("retry_max_delay_ms", config["retry_max_delay_ms"])
            if mx < base:
                self.add(f"nodes[{i}].reliability.retry_max_delay_ms", f"at least retry_base_delay_ms ({base})", str(mx))

    def check_params(self, base: str, t: NodeTypeSpec, given: Dict[str, Any]) -> Dict[str, Any]:
        before = self.p.count()
        out = self.check_specs(base, t.params, given, t.name, "param", t.open_params)
        # The engine's cross-param checks (NodeType::check), once each param is valid on its own.
        if self.p.count() == before and t.check is not None:
            for param, expected, found in t.check(out):
                self.add(join(base, param) if param else base, expected, found)
        return out

    def check_specs(self, base: str, specs: Sequence[ParamSpec], given: Dict[str, Any], owner: str, what: str,
                    open_: bool = False) -> Dict[str, Any]:
        """``given`` against ``specs`` (a node's params, or one variant's fields): every problem with
        its path, defaults filled in (``check_specs`` in Rust)."""
        out: Dict[str, Any] = {}
        declared = [s.name for s in specs]
        for key in sorted(given):
            v = given[key]
            path = join(base, key)
            spec = next((s for s in specs if s.name == key), None)
            if spec is not None:
                if v is None and not spec.required:
                    continue
                ok, norm = self.check_kind(path, spec, v)
                if ok:
                    out[key] = self.json_value(norm, path) if spec.kind == "any" else norm
            elif open_:
                out[key] = self.json_value(v, path)
            elif not declared:
                self.add(path, f"no {what}s ({owner} takes none)", f"the unknown {what} {quote(key)}")
            else:
                self.add(path, f"a {what} of {owner}: {', '.join(declared)}{did_you_mean(key, declared)}",
                         f"the unknown {what} {quote(key)}")
        for spec in specs:
            absent = spec.name not in given or (given[spec.name] is None and not spec.required)
            if not absent:
                continue
            if spec.required:
                self.add(join(base, spec.name), f"{describe_kind(spec)} (required by {owner})", "nothing")
            else:
                out[spec.name] = spec.default
        return out

    def check_kind(self, path: str, spec: ParamSpec, v: Any) -> Tuple[bool, Any]:
        """A value against a spec's kind, every problem added with its path: ``(ok, normalised)``
        (``check_kind`` in Rust)."""
        if spec.kind == "list":
            if not isinstance(v, list):
                self.add(path, describe_kind(spec), describe_mistyped(v))
                return False, None
            if not spec.min_len <= len(v) <= spec.max_len:
                self.add(path, describe_kind(spec), describe_value(v))
                return False, None
            before = self.p.count()
            out = []
            for i, x in enumerate(v):
                ok, norm = self.check_kind(f"{path}[{i}]", spec.item, x)
                if ok:
                    out.append(norm)
            return self.p.count() == before, out
        if spec.kind == "tagged":
            names = [variant.name for variant in spec.variants]
            if not isinstance(v, dict):
                self.add(path, describe_kind(spec), describe_value(v))
                return False, None
            tag_path = join(path, spec.tag)
            tag = v.get(spec.tag)
            variant = next((x for x in spec.variants if x.name == tag), None) if isinstance(tag, str) else None
            if variant is None:
                if isinstance(tag, str):
                    self.add(tag_path, f"one of {', '.join(names)}{did_you_mean(tag, names)}", quote(tag))
                else:
                    self.add(tag_path, f"one of {', '.join(names)}", _describe_opt(spec.tag in v, tag))
                return False, None
            before = self.p.count()
            fields = {k: x for k, x in v.items() if k != spec.tag}
            out = self.check_specs(path, variant.fields, fields, f"{spec.tag} {quote(variant.name)}", "field")
            for a, b in variant.increasing:
                x, y = out.get(a), out.get(b)
                if _is_number(x) and _is_number(y) and float(x) >= float(y):
                    self.add(join(path, b), f"a number above {a} ({format_float(float(x))})", format_float(float(y)))
            out[spec.tag] = variant.name
            return self.p.count() == before, out
        ok, norm, expected, found = check_value(spec, v)
        if not ok:
            self.add(path, expected, found)
        return ok, norm

    def check_endpoint(self, path: str, present: bool, v: Any, ids: Dict[str, int], id_list: List[str]) -> Optional[int]:
        if isinstance(v, str):
            if v in ids:
                return ids[v]
            guess = None if self.p.full() else closest(v, id_list)
            expected = (f"the id of a node (did you mean {quote(guess)}?)" if guess is not None
                        else f"the id of a node: {list_names(id_list)}")
            self.add(path, expected, f"{quote(v)}, which is no node's id")
            return None
        self.add(path, "the id of a node (a string)", _describe_opt(present, v))
        return None

    def check_key(self, path: str, v: Any) -> Tuple[bool, Optional[str]]:
        """``(ok, key)`` for an optional ``output_key``/``input_key``: absent, or a non-empty string."""
        if v is None:
            return True, None
        if isinstance(v, str) and v:
            return True, v
        self.add(path, "a non-empty string", describe_value(v))
        return False, None

    def check_edges(self, v: Any, nodes: List[_NodeDraft]) -> List[_EdgeDraft]:
        if v is None:
            return []
        if not isinstance(v, list):
            self.add("edges", "a list of edges", describe_value(v))
            return []
        ids: Dict[str, int] = {}
        for i, n in enumerate(nodes):
            if n.id is not None:
                ids.setdefault(n.id, i)
        id_list = [n.id for n in nodes if n.id is not None]
        drafts: List[_EdgeDraft] = []
        seen: Dict[Tuple[int, int, Optional[str], Optional[str]], int] = {}
        fed: Dict[Tuple[int, str], int] = {}
        for j, edge in enumerate(v):
            base = f"edges[{j}]"
            d = _EdgeDraft()
            if not isinstance(edge, dict):
                self.add(base, 'an edge object with "from" and "to"', describe_value(edge))
                drafts.append(d)
                continue
            self.check_fields(base, edge, EDGE_FIELDS, "an edge")
            d.src = self.check_endpoint(join(base, "from"), "from" in edge, edge.get("from"), ids, id_list)
            d.dst = self.check_endpoint(join(base, "to"), "to" in edge, edge.get("to"), ids, id_list)
            _, d.output_key = self.check_key(join(base, "output_key"), edge.get("output_key"))
            in_ok, d.input_key = self.check_key(join(base, "input_key"), edge.get("input_key"))
            input_key = d.input_key

            # The source must produce the named output.
            if d.src is not None and d.output_key is not None:
                t = nodes[d.src].type
                key = d.output_key
                if t is not None and not t.open_outputs and key not in t.outputs:
                    src = quote(nodes[d.src].id or "")
                    if not t.outputs:
                        expected = f"no output_key ({t.name} {src} has one whole output)"
                    else:
                        expected = f"an output of {t.name} {src}: {', '.join(t.outputs)}{did_you_mean(key, t.outputs)}"
                    self.add(join(base, "output_key"), expected, quote(key))

            # Resolve the input port on the target.
            if d.dst is not None and in_ok:
                t = nodes[d.dst].type
                if t is not None:
                    target = quote(nodes[d.dst].id or "")
                    key_path = join(base, "input_key")
                    if t.inputs == "one":
                        if input_key is None or input_key == DEFAULT_PORT:
                            d.port = DEFAULT_PORT
                        else:
                            self.add(key_path, f'no input_key, or "{DEFAULT_PORT}" ({t.name} {target} has a single input)',
                                     quote(input_key))
                    elif t.inputs == "named":
                        ports = t.ports
                        if input_key is not None and input_key in ports:
                            d.port = input_key
                        elif input_key is None and len(ports) == 1:
                            d.port = ports[0]
                        elif not ports:
                            self.add(join(base, "to"), f"a node with inputs ({t.name} {target} takes none)",
                                     quote(nodes[d.dst].id or ""))
                        elif input_key is not None:
                            self.add(key_path, f"an input port of {t.name} {target}: {', '.join(ports)}{did_you_mean(input_key, ports)}",
                                     quote(input_key))
                        else:
                            self.add(key_path, f"an input_key naming an input port of {t.name} {target}: {', '.join(ports)}",
                                     "nothing")
                    elif t.inputs == "any":
                        if input_key is not None:
                            d.port = input_key
                        elif d.src is not None:
                            d.port = nodes[d.src].id
                    d.port_failed = d.port is None

            # The same edge twice, then two edges into one port.
            repeated = False
            if d.src is not None and d.dst is not None:
                key4 = (d.src, d.dst, d.output_key, d.input_key)
                if key4 in seen:
                    self.add(base, "each edge listed once", f"a repeat of edges[{seen[key4]}]")
                    repeated = True
                else:
                    seen[key4] = j
            if not repeated and d.dst is not None and d.port is not None:
                first = fed.get((d.dst, d.port))
                if first is not None:
                    t = nodes[d.dst].type
                    if t is not None:
                        target = quote(nodes[d.dst].id or "")
                        if t.inputs == "one":
                            self.add(join(base, "to"),
                                     f"a node with a free input ({t.name} {target} takes one input, already fed by "
                                     f"edges[{first}]; combine inputs with a MixNode)",
                                     f"a second edge into {target}")
                        else:
                            path = join(base, "input_key") if d.input_key is not None else base
                            hint = "; give each edge its own input_key" if d.input_key is None and t.inputs == "any" else ""
                            self.add(path, f"one edge per input port (edges[{first}] already feeds it{hint})",
                                     f"a second edge into port {quote(d.port)} of {target}")
                else:
                    fed[(d.dst, d.port)] = j
            drafts.append(d)
        return drafts

    def check_named_ports(self, nodes: List[_NodeDraft], edges: List[_EdgeDraft]) -> None:
        """Every port of a node with named ports must be fed (unless an edge into it is already reported)."""
        ports_fed: List[set] = [set() for _ in nodes]
        failed = [False] * len(nodes)
        for e in edges:
            if e.dst is not None:
                if e.port is not None:
                    ports_fed[e.dst].add(e.port)
                failed[e.dst] = failed[e.dst] or e.port_failed
        for i, n in enumerate(nodes):
            t = n.type
            if t is None or t.inputs != "named" or failed[i]:
                continue
            missing = [quote(x) for x in t.ports if x not in ports_fed[i]]
            if missing:
                self.add(f"nodes[{i}]", f"an edge into every input port of {t.name}: {', '.join(t.ports)}",
                         f"no edge into {', '.join(missing)}")

    def check_cycles(self, nodes: List[_NodeDraft], edges: List[_EdgeDraft]) -> None:
        """Reports each cycle (one per strongly connected component), naming its nodes in order."""
        n = len(nodes)
        out: List[List[Tuple[int, int]]] = [[] for _ in range(n)]
        for j, e in enumerate(edges):
            if e.src is not None and e.dst is not None:
                out[e.src].append((j, e.dst))
        comp = _strongly_connected(out)
        size = [0] * n
        for c in comp:
            size[c] += 1

        def name(i: int) -> str:
            return nodes[i].id if nodes[i].id is not None else f"nodes[{i}]"

        reported = [False] * n
        for start in range(n):
            c = comp[start]
            if reported[c]:
                continue
            self_loop = next((j for j, t in out[start] if t == start), None)
            if size[c] == 1 and self_loop is None:
                continue
            reported[c] = True
            if self_loop is not None:
                closing, path = self_loop, [start]
            else:
                found = _shortest_cycle(start, out, comp)
                if found is None:
                    continue
                closing, path = found
            # A long cycle names its first nodes and counts the rest.
            names = [short(name(i)) for i in path[:_CYCLE_SHOWN]]
            if len(path) > _CYCLE_SHOWN:
                names.append(f"… ({len(path) - _CYCLE_SHOWN} more)")
            names.append(short(name(start)))
            self.add(f"edges[{closing}]", "a graph without cycles (data must flow from the inputs to the outputs)",
                     "the cycle " + " -> ".join(names))

    def check_outputs(self, v: Any, nodes: List[_NodeDraft]) -> Optional[List[int]]:
        """The manifest's ``outputs`` (``check_outputs`` in Rust): node ids, each listed once."""
        if v is None:
            return None
        if isinstance(v, list) and not v:
            self.add("outputs", "a list of at least one node id (or no outputs section: the sinks are the outputs)",
                     "an empty list")
            return None
        if not isinstance(v, list):
            self.add("outputs", "a list of node ids (the nodes whose outputs a run returns)", describe_value(v))
            return None
        ids: Dict[str, int] = {}
        for i, n in enumerate(nodes):
            if n.id is not None:
                ids.setdefault(n.id, i)
        id_list = [n.id for n in nodes if n.id is not None]
        first: Dict[int, int] = {}
        out: List[int] = []
        before = self.p.count()
        for k, entry in enumerate(v):
            path = f"outputs[{k}]"
            node = self.check_endpoint(path, True, entry, ids, id_list)
            if node is None:
                continue
            if node in first:
                self.add(path, "each node listed once", f"{quote(entry)}, already outputs[{first[node]}]")
            else:
                first[node] = k
                out.append(node)
        return out if self.p.count() == before else None

    def check_config(self, v: Any) -> Dict[str, Any]:
        c = dict(_CONFIG_DEFAULTS)
        if v is None:
            return c
        if not isinstance(v, dict):
            self.add("config", "an object of settings", describe_value(v))
            return c
        self.check_fields("config", v, CONFIG_FIELDS, "config")
        for key in sorted(v):
            spec = _CONFIG_KINDS.get(key)
            if spec is None or v[key] is None:
                continue
            ok, value, expected, found = check_value(spec, v[key])
            if not ok:
                self.add(join("config", key), expected, found)
                continue
            c[key] = value
        if c["retry_max_delay_ms"] < c["retry_base_delay_ms"]:
            self.add("config.retry_max_delay_ms", f"at least retry_base_delay_ms ({c['retry_base_delay_ms']})",
                     str(c["retry_max_delay_ms"]))
        return c

    def build_graph(self, drafts: List[_NodeDraft], edge_drafts: List[_EdgeDraft], config: Dict[str, Any]) -> Optional[Graph]:
        nodes: List[GraphNode] = []
        for d in drafts:
            if d.id is None or d.type is None:
                return None
            nodes.append(GraphNode(id=d.id, type=d.type, params=d.params, runtime_hint=d.runtime_hint,
                                   reliability=d.reliability))
        edges: List[GraphEdge] = []
        for j, e in enumerate(edge_drafts):
            if e.src is None or e.dst is None or e.port is None:
                return None
            nodes[e.src].outputs.append(j)
            nodes[e.dst].inputs.append(j)
            edges.append(GraphEdge(src=e.src, dst=e.dst, output_key=e.output_key, port=e.port))
        order = _topological_order(nodes, edges)
        if len(order) != len(nodes):
            self.add("edges", "a graph without cycles", "a cycle the cycle check missed")
            return None
        return Graph(nodes=nodes, edges=edges, order=order, config=dict(config))


def _strongly_connected(out: List[List[Tuple[int, int]]]) -> List[int]:
    """The component number of each node (Tarjan's algorithm, iterative)."""
    n = len(out)
    unseen = -1
    index = [unseen] * n
    low = [0] * n
    on_stack = [False] * n
    stack: List[int] = []
    comp = [unseen] * n
    next_index = 0
    next_comp = 0
    for root in range(n):
        if index[root] != unseen:
            continue
        call = [[root, 0]]
        index[root] = low[root] = next_index
        next_index += 1
        stack.append(root)
        on_stack[root] = True
        while call:
            frame = call[-1]
            v, pos = frame
            if pos < len(out[v]):
                frame[1] += 1
                w = out[v][pos][1]
                if index[w] == unseen:
                    index[w] = low[w] = next_index
                    next_index += 1
                    stack.append(w)
                    on_stack[w] = True
                    call.append([w, 0])
                elif on_stack[w]:
                    low[v] = min(low[v], index[w])
            else:
                call.pop()
                if call:
                    parent = call[-1][0]
                    low[parent] = min(low[parent], low[v])
                if low[v] == index[v]:
                    while stack:
                        w = stack.pop()
                        on_stack[w] = False
                        comp[w] = next_comp
                        if w == v:
                            break
                    next_comp += 1
    return comp


def _shortest_cycle(start: int, out: List[List[Tuple[int, int]]], comp: List[int]) -> Optional[Tuple[int, List[int]]]:
    """The closing edge and the nodes of a shortest cycle through ``start`` within its component."""
    from collections import deque

    c = comp[start]
    prev: Dict[int, int] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for j, w in out[v]:
            if comp[w] != c:
                continue
            if w == start:
                path = [v]
                at = v
                while at != start:
                    at = prev[at]
                    path.append(at)
                path.reverse()
                return j, path
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return None


def _topological_order(nodes: List[GraphNode], edges: List[GraphEdge]) -> List[int]:
    """Kahn's algorithm, always taking the ready node that comes first in the manifest."""
    import heapq

    indeg = [len(n.inputs) for n in nodes]
    ready = [i for i in range(len(nodes)) if indeg[i] == 0]
    heapq.heapify(ready)
    order: List[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for e in nodes[i].outputs:
            to = edges[e].dst
            indeg[to] -= 1
            if indeg[to] == 0:
                heapq.heappush(ready, to)
    return order
