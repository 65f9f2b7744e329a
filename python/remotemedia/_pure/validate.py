"""Manifest validation, mirroring the Rust validator: walks the tree, collects EVERY problem as
``(path, expected, found)`` and raises one :class:`ManifestError`, or returns the :class:`Graph`.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ManifestError, Problem
from .graph import DEFAULT_CONFIG, Graph, GraphEdge, GraphNode
from .schema import NodeTypeSpec, ParamSpec, describe_kind, describe_value

__all__ = ["validate", "SUPPORTED_VERSIONS", "closest"]

SUPPORTED_VERSIONS = ("1.0",)
TOP_FIELDS = ("version", "name", "metadata", "nodes", "edges", "config")
NODE_FIELDS = ("id", "type", "params", "runtime_hint")
EDGE_FIELDS = ("from", "to", "output_key", "input_key")
RUNTIME_HINTS = ("auto", "rust", "python")
DEFAULT_PORT = "in"

CONFIG_PARAMS = [
    ParamSpec("enable_metrics", "bool", default=False),
    ParamSpec("retry_policy", "choice", choices=("none", "fixed", "exponential"), default="none"),
    ParamSpec("max_retries", "int", 0, 100, default=3),
    ParamSpec("workers", "int", 1, 256, default=1),
    ParamSpec("retry_base_delay_ms", "int", 0, 60_000),
    ParamSpec("retry_max_delay_ms", "int", 0, 600_000),
    ParamSpec("retry_jitter", "bool"),
    ParamSpec("circuit_breaker_threshold", "int", 0, 10_000),
    ParamSpec("circuit_breaker_cooldown_ms", "int", 0, 3_600_000),
]


def validate(tree: Any, types: Dict[str, NodeTypeSpec]) -> Graph:
    """Checks a manifest tree against the node ``types``; raises ManifestError listing every problem."""
    v = _Validator(types)
    graph = v.run(tree)
    if v.problems:
        raise ManifestError(v.problems)
    assert graph is not None
    return graph


# ---- helpers ----


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def closest(name: str, candidates: Sequence[str]) -> Optional[str]:
    """The candidate a misspelt ``name`` most likely meant, or None."""
    if not candidates:
        return None
    low = name.lower()
    best = min(candidates, key=lambda c: (_levenshtein(low, c.lower()), c))
    if _levenshtein(low, best.lower()) <= max(2, len(name) // 3):
        return best
    if len(name) >= 3:
        return next((c for c in candidates if low in c.lower()), None)
    return None


def _one_of(names: Sequence[str], given: Optional[str] = None) -> str:
    text = "one of " + ", ".join(json.dumps(n) for n in names) if len(names) != 1 else json.dumps(names[0])
    if given is not None:
        s = closest(given, names)
        if s is not None and s != given:
            text += f' (did you mean "{s}"?)'
    return text


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def check_param(p: ParamSpec, value: Any) -> Tuple[bool, Any]:
    """``(ok, normalised value)``; integer-valued floats count as integers."""
    if p.kind in ("int", "int_choice"):
        if _is_int(value):
            n = int(value)
        elif _is_real(value) and math.isfinite(float(value)) and float(value).is_integer():
            n = int(value)
        else:
            return False, None
        if p.kind == "int_choice":
            return n in (p.choices or ()), n
        in_range = (p.min is None or n >= p.min) and (p.max is None or n <= p.max)
        return in_range, n
    if p.kind == "float":
        if not _is_real(value) or not math.isfinite(float(value)):
            return False, None
        x = float(value)
        return (p.min is None or x >= p.min) and (p.max is None or x <= p.max), x
    if p.kind == "choice":
        return isinstance(value, str) and value in (p.choices or ()), value
    if p.kind == "bool":
        return isinstance(value, (bool, np.bool_)), bool(value) if isinstance(value, (bool, np.bool_)) else None
    return True, value


class _Validator:
    def __init__(self, types: Dict[str, NodeTypeSpec]):
        self.types = types
        self.problems: List[Problem] = []

    def add(self, path: str, expected: str, found: str) -> None:
        self.problems.append(Problem(path, expected, found))

    def unknown_fields(self, obj: Dict[str, Any], allowed: Sequence[str], prefix: str) -> None:
        for k in obj:
            if k not in allowed:
                self.add(f"{prefix}{k}", _one_of(allowed, str(k)), "an unknown field")

    def json_value(self, v: Any, path: str) -> Any:
        """Normalises numpy scalars and tuples; flags what JSON cannot hold."""
        if isinstance(v, np.generic):
            v = v.item()
        if v is None or isinstance(v, (bool, str, int)):
            return v
        if isinstance(v, float):
            if not math.isfinite(v):
                self.add(path, "a finite number", describe_value(v))
            return v
        if isinstance(v, (list, tuple)):
            return [self.json_value(x, f"{path}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                if not isinstance(k, str):
                    self.add(f"{path}.{k}", "a string key", describe_value(k))
                out[str(k)] = self.json_value(x, f"{path}.{k}")
            return out
        self.add(path, "a JSON value", describe_value(v))
        return None

    # ---- the walk ----

    def run(self, tree: Any) -> Optional[Graph]:
        if not isinstance(tree, dict):
            self.add("manifest", "an object with version and nodes", describe_value(tree))
            return None
        self.unknown_fields(tree, TOP_FIELDS, "")
        version = tree.get("version")
        if version is None:
            self.add("version", _one_of(SUPPORTED_VERSIONS), "nothing")
        elif version not in SUPPORTED_VERSIONS:
            self.add("version", _one_of(SUPPORTED_VERSIONS), describe_value(version))
        if tree.get("name") is not None and not isinstance(tree["name"], str):
            self.add("name", "a string", describe_value(tree["name"]))
        if tree.get("metadata") is not None:
            if isinstance(tree["metadata"], dict):
                self.json_value(tree["metadata"], "metadata")
            else:
                self.add("metadata", "an object", describe_value(tree["metadata"]))

        nodes = self.nodes(tree.get("nodes"))
        edges = self.edges(tree.get("edges"), nodes)
        order = self.order(nodes, edges)
        config = self.config(tree.get("config"))
        if self.problems:
            return None
        return Graph(nodes=nodes, edges=edges, order=order, config=config)

    def nodes(self, raw: Any) -> List[GraphNode]:
        if raw is None:
            self.add("nodes", "a non-empty list of nodes", "nothing")
            return []
        if not isinstance(raw, list):
            self.add("nodes", "a non-empty list of nodes", describe_value(raw))
            return []
        if not raw:
            self.add("nodes", "a non-empty list of nodes", "an empty list")
        out: List[GraphNode] = []
        seen: Dict[str, int] = {}
        for i, n in enumerate(raw):
            at = f"nodes[{i}]"
            if not isinstance(n, dict):
                self.add(at, "an object with id and type", describe_value(n))
                continue
            self.unknown_fields(n, NODE_FIELDS, f"{at}.")
            node_id = n.get("id")
            if node_id is None:
                self.add(f"{at}.id", "a non-empty string", "nothing")
            elif not isinstance(node_id, str) or not node_id:
                self.add(f"{at}.id", "a non-empty string", describe_value(node_id))
                node_id = None
            elif node_id in seen:
                self.add(f"{at}.id", "a unique node id", f'"{node_id}", already the id of nodes[{seen[node_id]}]')
            else:
                seen[node_id] = i
            spec = self.node_type(n.get("type"), at)
            params = self.params(n.get("params"), spec, at)
            hint = n.get("runtime_hint")
            if hint is None:
                hint = "auto"
            elif hint not in RUNTIME_HINTS:
                self.add(f"{at}.runtime_hint", _one_of(RUNTIME_HINTS), describe_value(hint))
            if isinstance(node_id, str) and spec is not None and seen.get(node_id) == i:
                out.append(GraphNode(id=node_id, type=spec, params=params, runtime_hint=hint))
            else:
                # Keep a placeholder so edge checks can still resolve this node's id.
                out.append(GraphNode(id=node_id if isinstance(node_id, str) and seen.get(node_id) == i else "",
                                     type=spec or NodeTypeSpec(name="", open_params=True, open_outputs=True, inputs="?"),
                                     params=params, runtime_hint="auto"))
        return out

    def node_type(self, ty: Any, at: str) -> Optional[NodeTypeSpec]:
        if ty is None:
            self.add(f"{at}.type", "a node type name", "nothing")
            return None
        if not isinstance(ty, str):
            self.add(f"{at}.type", "a node type name", describe_value(ty))
            return None
        spec = self.types.get(ty)
        if spec is None:
            self.add(f"{at}.type", "a known node type, " + _one_of(sorted(self.types), ty), describe_value(ty))
        return spec

    def params(self, raw: Any, spec: Optional[NodeTypeSpec], at: str) -> Dict[str, Any]:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.add(f"{at}.params", "an object", describe_value(raw))
            raw = {}
        out: Dict[str, Any] = {}
        if spec is None:
            return out
        declared = [p.name for p in spec.params]
        for k, v in raw.items():
            path = f"{at}.params.{k}"
            p = spec.param(k) if isinstance(k, str) else None
            if p is None:
                if spec.open_params:
                    out[str(k)] = self.json_value(v, path)
                elif declared:
                    self.add(path, f"a parameter of {spec.name}, " + _one_of(declared, str(k)), "an unknown parameter")
                else:
                    self.add(path, f"no parameters ({spec.name} takes none)", "an unknown parameter")
        for p in spec.params:
            path = f"{at}.params.{p.name}"
            v = raw.get(p.name)
            if v is None:
                if p.required:
                    self.add(path, describe_kind(p), "nothing" if p.name not in raw else "null")
                out[p.name] = p.default
                continue
            ok, value = check_param(p, v)
            if not ok:
                self.add(path, describe_kind(p), describe_value(v))
            elif p.kind == "any":
                out[p.name] = self.json_value(value, path)
            else:
                out[p.name] = value
        return out

    def edges(self, raw: Any, nodes: List[GraphNode]) -> List[GraphEdge]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.add("edges", "a list of edges", describe_value(raw))
            return []
        index = {n.id: i for i, n in enumerate(nodes) if n.id}
        ids = list(index)
        out: List[GraphEdge] = []
        fed: Dict[Tuple[int, str], int] = {}
        for i, e in enumerate(raw):
            at = f"edges[{i}]"
            if not isinstance(e, dict):
                self.add(at, "an object with from and to", describe_value(e))
                continue
            self.unknown_fields(e, EDGE_FIELDS, f"{at}.")
            ends = []
            for end in ("from", "to"):
                ref = e.get(end)
                if ref is None:
                    self.add(f"{at}.{end}", "a node id", "nothing")
                elif not isinstance(ref, str):
                    self.add(f"{at}.{end}", "a node id", describe_value(ref))
                elif ref not in index:
                    self.add(f"{at}.{end}", "the id of a node, " + _one_of(ids, ref), describe_value(ref))
                ends.append(index.get(ref) if isinstance(ref, str) else None)
            src, dst = ends
            output_key = self.key(e, "output_key", at)
            input_key = self.key(e, "input_key", at)
            if src is not None and output_key is not None:
                st = nodes[src].type
                if st.name and not st.open_outputs and output_key not in st.outputs:
                    expected = _one_of(st.outputs, output_key) if st.outputs else f"no output_key ({st.name} has a single output)"
                    self.add(f"{at}.output_key", expected, describe_value(output_key))
            if src is None or dst is None:
                continue
            port = self.port(nodes[src], nodes[dst], input_key, at)
            if port is None:
                continue
            first = fed.get((dst, port))
            if first is not None:
                dt = nodes[dst].type
                if dt.inputs == "one":
                    self.add(f"{at}.to", f'one edge into "{nodes[dst].id}" ({dt.name} has one input; combine several with a MixNode)',
                             f"a second edge (edges[{first}] already feeds it)")
                else:
                    self.add(at, f'one edge per input port of "{nodes[dst].id}"',
                             f'a second edge into port "{port}" (edges[{first}] already feeds it)')
                continue
            fed[(dst, port)] = i
            nodes[src].outputs.append(len(out))
            nodes[dst].inputs.append(len(out))
            out.append(GraphEdge(src=src, dst=dst, output_key=output_key, port=port))
        return out

    def key(self, e: Dict[str, Any], name: str, at: str) -> Optional[str]:
        k = e.get(name)
        if k is None or isinstance(k, str):
            return k
        self.add(f"{at}.{name}", "a string", describe_value(k))
        return None

    def port(self, src: GraphNode, dst: GraphNode, input_key: Optional[str], at: str) -> Optional[str]:
        t = dst.type
        if t.inputs == "one":
            if input_key is None or input_key == DEFAULT_PORT:
                return DEFAULT_PORT
            self.add(f"{at}.input_key", f'no input_key ({t.name} has one input)', describe_value(input_key))
            return None
        if t.inputs == "named":
            if input_key in t.ports:
                return input_key
            self.add(f"{at}.input_key", f"{_one_of(t.ports, input_key)} ({t.name} has named inputs)",
                     "nothing" if input_key is None else describe_value(input_key))
            return None
        if t.inputs == "any":
            return input_key if input_key is not None else src.id
        return None  # unknown type, already reported

    def order(self, nodes: List[GraphNode], edges: List[GraphEdge]) -> List[int]:
        """Kahn's algorithm, ties broken by manifest order; reports every cycle left over."""
        indeg = [len(n.inputs) for n in nodes]
        done = [False] * len(nodes)
        order: List[int] = []
        while True:
            nxt = next((i for i in range(len(nodes)) if not done[i] and indeg[i] == 0), None)
            if nxt is None:
                break
            done[nxt] = True
            order.append(nxt)
            for ei in nodes[nxt].outputs:
                indeg[edges[ei].dst] -= 1
        remaining = {i for i in range(len(nodes)) if not done[i]}
        while remaining:
            cycle = self.find_cycle(nodes, edges, remaining)
            names = [nodes[i].id for i in cycle]
            self.add("edges", "an acyclic graph", "a cycle: " + " -> ".join(names + names[:1]))
            remaining -= set(cycle)
            remaining = self.peel(nodes, edges, remaining)
        return order

    @staticmethod
    def find_cycle(nodes: List[GraphNode], edges: List[GraphEdge], remaining: set) -> List[int]:
        # Every remaining node has a predecessor among the remaining ones: walk backwards until a
        # node repeats; the walk from there is a cycle (reversed).
        v = min(remaining)
        path: List[int] = []
        seen: Dict[int, int] = {}
        while v not in seen:
            seen[v] = len(path)
            path.append(v)
            v = next(edges[ei].src for ei in nodes[v].inputs if edges[ei].src in remaining)
        cycle = list(reversed(path[seen[v]:]))
        start = cycle.index(min(cycle))
        return cycle[start:] + cycle[:start]

    @staticmethod
    def peel(nodes: List[GraphNode], edges: List[GraphEdge], remaining: set) -> set:
        """Drops the remaining nodes that no longer lie on or behind a cycle."""
        changed = True
        while changed:
            changed = False
            for i in sorted(remaining):
                if not any(edges[ei].src in remaining for ei in nodes[i].inputs):
                    remaining.discard(i)
                    changed = True
        return remaining

    def config(self, raw: Any) -> Dict[str, Any]:
        out = dict(DEFAULT_CONFIG)
        if raw is None:
            return out
        if not isinstance(raw, dict):
            self.add("config", "an object", describe_value(raw))
            return out
        allowed = [p.name for p in CONFIG_PARAMS]
        self.unknown_fields(raw, allowed, "config.")
        for p in CONFIG_PARAMS:
            v = raw.get(p.name)
            if v is None:
                continue
            ok, value = check_param(p, v)
            if ok:
                out[p.name] = value
            else:
                self.add(f"config.{p.name}", describe_kind(p), describe_value(v))
        return out
