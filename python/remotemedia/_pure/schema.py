"""Node type schemas: what params, inputs and outputs each node type has, as the validator sees them.

The built-in schemas come from ``schema.json``'s ``node_types``, generated from the Rust registry so both
runtimes accept exactly the same manifests. Custom Python node types add open schemas.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Dict, List, Optional

__all__ = ["ParamSpec", "Variant", "NodeTypeSpec", "builtin_types", "describe_kind", "describe_value", "quote", "format_number"]


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: str  # int | float | choice | int_choice | bool | any | list | tagged
    min: Optional[float] = None
    max: Optional[float] = None
    choices: Optional[tuple] = None
    required: bool = False
    default: Any = None
    doc: str = ""
    #: ``list``: the kind of every item (a nameless spec) and the allowed lengths.
    item: Optional["ParamSpec"] = None
    min_len: int = 0
    max_len: int = 0
    #: ``tagged``: the field naming the variant, and the variants.
    tag: str = ""
    variants: tuple = ()

    @classmethod
    def from_dict(cls, p: Dict[str, Any]) -> "ParamSpec":
        """A spec from its ``schema.json`` entry (a nameless one for a list's item kind)."""
        return cls(
            name=p.get("name", ""),
            kind=p["kind"],
            min=p.get("min"),
            max=p.get("max"),
            choices=tuple(p["choices"]) if p.get("choices") is not None else None,
            required=bool(p.get("required", False)),
            default=p.get("default"),
            doc=p.get("doc", ""),
            item=cls.from_dict(p["item"]) if p.get("item") is not None else None,
            min_len=int(p.get("min_len", 0)),
            max_len=int(p.get("max_len", 0)),
            tag=p.get("tag", ""),
            variants=tuple(Variant.from_dict(v) for v in p.get("variants", ())),
        )


@dataclass(frozen=True)
class Variant:
    """One variant of a ``tagged`` param: its tag value, its fields, and the pairs of fields that
    must increase (``Variant`` in ``src/nodes/mod.rs``)."""

    name: str
    doc: str = ""
    fields: tuple = ()
    increasing: tuple = ()

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Variant":
        return cls(
            name=d["name"],
            doc=d.get("doc", ""),
            fields=tuple(ParamSpec.from_dict(f) for f in d.get("fields", ())),
            increasing=tuple(tuple(pair) for pair in d.get("increasing", ())),
        )


@dataclass
class NodeTypeSpec:
    name: str
    doc: str = ""
    params: List[ParamSpec] = field(default_factory=list)
    inputs: str = "one"  # one | named | any
    ports: List[str] = field(default_factory=list)
    outputs: List[str] = field(default_factory=list)
    open_params: bool = False
    open_outputs: bool = False
    stateful: bool = False
    #: The Node subclass for custom Python types; None for built-ins.
    python_class: Any = None
    #: The cross-param check of a built-in type (the Rust ``NodeType::check``): validated params
    #: in, ``(param, expected, found)`` problems out; None when the type has none.
    check: Any = None

    def param(self, name: str) -> Optional[ParamSpec]:
        return next((p for p in self.params if p.name == name), None)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "NodeTypeSpec":
        inputs = d.get("inputs") or {"kind": "one"}
        params = [ParamSpec.from_dict(p) for p in d.get("params", [])]
        return cls(
            name=d["name"],
            doc=d.get("doc", ""),
            params=params,
            inputs=inputs["kind"],
            ports=list(inputs.get("ports", [])),
            outputs=list(d.get("outputs", [])),
            open_params=bool(d.get("open_params", False)),
            open_outputs=bool(d.get("open_outputs", False)),
            stateful=bool(d.get("stateful", False)),
            python_class=d.get("python_class"),
        )


@lru_cache(maxsize=1)
def builtin_types() -> Dict[str, NodeTypeSpec]:
    """The built-in node types, by name, from ``schema.json``."""
    from .._schema import SCHEMA

    types = {d["name"]: NodeTypeSpec.from_dict(d) for d in SCHEMA["node_types"]}
    # The twins of the Rust types' cross-param checks (their params structs' `problems`).
    from . import channel_mix, features, resample, segment

    for name, check in (
        ("ChannelMixNode", channel_mix.check_params),
        ("SegmentNode", segment.check_params),
        ("AudioResampleNode", resample.rate_pair_problems),
        ("MfccNode", features.mfcc_check_params),
    ):
        if name in types:
            types[name].check = check
    return types


def rust_display_f64(x: float) -> str:
    """``x`` as Rust's ``Display`` for f64 writes it: never an exponent, no ``.0`` on whole numbers."""
    from decimal import Decimal

    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = format(Decimal(repr(float(x))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_float(x: float) -> str:
    """A finite float as serde_json prints it (shortest round trip, ``1e+21``, ``1e-7``, ``0.00001``)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    r = repr(float(x))
    if "e" not in r:
        return r
    mantissa, exp_text = r.split("e")
    exp = int(exp_text)
    if exp >= 0:
        return f"{mantissa}e+{exp}"
    if exp == -5:
        # serde_json's formatter writes 1e-5 and above in plain decimals, Python switches at 1e-4.
        sign = "-" if mantissa.startswith("-") else ""
        digits = mantissa.lstrip("-").replace(".", "")
        return f"{sign}0.0000{digits}"
    return f"{mantissa}e-{-exp}"


def format_number(v) -> str:
    """A JSON number as serde_json prints it; integers beyond u64 are floats there."""
    if isinstance(v, int) and not isinstance(v, bool):
        if -(2**63) <= v < 2**64:
            return str(v)
        try:
            return format_float(float(v))
        except OverflowError:
            return "inf" if v > 0 else "-inf"
    return format_float(float(v))


def quote(s: str) -> str:
    """A string as a JSON literal, shortened to 60 characters (user text can be anything)."""
    shown = s[:60] + ("…" if len(s) > 60 else "")
    return json.dumps(shown, ensure_ascii=False)


def describe_kind(p: ParamSpec) -> str:
    """What a param accepts, in the engine's words (``an integer from 8000 to 192000``)."""
    if p.kind == "int":
        return f"an integer from {int(p.min)} to {int(p.max)}"
    if p.kind == "float":
        return f"a number from {rust_display_f64(p.min)} to {rust_display_f64(p.max)}"
    if p.kind == "choice":
        return "one of " + ", ".join(f'"{c}"' for c in p.choices or ())
    if p.kind == "int_choice":
        return "one of " + ", ".join(str(c) for c in p.choices or ())
    if p.kind == "bool":
        return "true or false"
    if p.kind == "list":
        return f"a list of {p.min_len} to {p.max_len} items, each {describe_kind(p.item)}"
    if p.kind == "tagged":
        return f'an object with "{p.tag}": one of ' + ", ".join(f'"{v.name}"' for v in p.variants)
    return "any value"


def describe_value(v: Any) -> str:
    """What a manifest value is, for the ``found`` half of a problem (``describe`` in Rust)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return format_number(v)
    if isinstance(v, str):
        return f"the string {quote(v)}"
    if isinstance(v, (list, tuple)):
        n = len(v)
        return "an empty list" if not n else f"a list of {n} item{'' if n == 1 else 's'}"
    if isinstance(v, dict):
        if not v:
            return "an empty object"
        keys = sorted(str(k) for k in v)
        more = ", …" if len(keys) > 5 else ""
        return "an object with fields " + ", ".join(quote(k) for k in keys[:5]) + more
    return f"a Python {type(v).__name__} (not a JSON value)"
