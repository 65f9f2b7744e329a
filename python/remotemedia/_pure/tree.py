"""Reading manifest text into a tree as strictly as the Rust reader (``src/manifest/tree.rs``):
a key repeated within one mapping and a number that is not finite (JSON ``NaN``/``Infinity``/
``1e400``, YAML ``.nan``/``.inf``) are problems with the same line, column and wording, instead of
being silently merged or kept. Other syntax errors keep the Python parsers' positions; their
messages use serde_json's words where the two parsers mean the same thing.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import math
from typing import Any, Dict, List, Tuple

from ..errors import ManifestError

__all__ = ["parse_str", "parse_json", "parse_yaml"]


def parse_str(text: str) -> Any:
    """Manifest text as a tree: JSON if it starts with ``{``, YAML otherwise (as ``parse_str`` in Rust)."""
    return parse_json(text) if text.lstrip().startswith("{") else parse_yaml(text)


# ---- JSON ----


class _JsonProblem(Exception):
    def __init__(self, pos: int, message: str, *, at_char: bool):
        self.pos, self.message, self.at_char = pos, message, at_char


def _location(text: str, pos: int, at_char: bool) -> Tuple[int, int]:
    """serde_json's line and column: of the character at ``pos`` (``at_char``), or of the last
    character read before ``pos``."""
    line = text.count("\n", 0, pos) + 1
    start = text.rfind("\n", 0, pos) + 1
    return line, pos - start + (1 if at_char else 0)


# Python's messages where serde_json says the same thing at the same place.
_SERDE_WORDS = {
    "Expecting value": "expected value",
    "Extra data": "trailing characters",
    "Expecting property name enclosed in double quotes": "key must be a string",
    "Expecting ':' delimiter": "expected `:`",
}


def _json_decoder() -> json.JSONDecoder:
    decoder = json.JSONDecoder()
    ws = json.decoder.WHITESPACE.match

    def scan_once(s: str, idx: int) -> Tuple[Any, int]:
        c = s[idx:idx + 1]
        if c in ("N", "I"):  # NaN, Infinity: not JSON
            raise _JsonProblem(idx, "expected value", at_char=True)
        if s.startswith("-I", idx):
            raise _JsonProblem(idx + 1, "invalid number", at_char=True)
        value, end = inner(s, idx)
        if isinstance(value, float) and not math.isfinite(value):
            raise _JsonProblem(end, "number out of range", at_char=False)
        return value, end

    def parse_object(s_and_end: Tuple[str, int], strict: bool, _scan: Any, *_: Any) -> Tuple[Dict[str, Any], int]:
        # json.decoder.JSONObject, refusing a repeated key where the key ends.
        s, end = s_and_end
        obj: Dict[str, Any] = {}
        nextchar = s[end:end + 1]
        if nextchar != '"':
            end = ws(s, end).end()
            nextchar = s[end:end + 1]
            if nextchar == "}":
                return obj, end + 1
            if nextchar != '"':
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", s, end)
        end += 1
        while True:
            key, end = json.decoder.scanstring(s, end, strict)
            if key in obj:
                raise _JsonProblem(end, f"duplicate key {json.dumps(key, ensure_ascii=False)}", at_char=False)
            end = ws(s, end).end()
            if s[end:end + 1] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", s, end)
            end = ws(s, end + 1).end()
            try:
                value, end = scan_once(s, end)
            except StopIteration as err:
                raise json.JSONDecodeError("Expecting value", s, err.value) from None
            obj[key] = value
            end = ws(s, end).end()
            nextchar = s[end:end + 1]
            end += 1
            if nextchar == "}":
                return obj, end
            if nextchar != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", s, end - 1)
            end = ws(s, end).end()
            nextchar = s[end:end + 1]
            end += 1
            if nextchar != '"':
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", s, end - 1)

    def parse_array(s_and_end: Tuple[str, int], _scan: Any) -> Tuple[List[Any], int]:
        return json.decoder.JSONArray(s_and_end, scan_once)

    decoder.parse_object = parse_object  # type: ignore[assignment]
    decoder.parse_array = parse_array  # type: ignore[assignment]
    inner = json.scanner.py_make_scanner(decoder)
    decoder.scan_once = scan_once  # type: ignore[assignment]
    return decoder


def _container_at(text: str, pos: int) -> str:
    """``}`` or ``]``: what closes the innermost list or object open at ``pos``."""
    stack: List[str] = []
    in_string = escaped = False
    for c in text[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "{[":
            stack.append("}" if c == "{" else "]")
        elif c in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else "}"


def parse_json(text: str) -> Any:
    """JSON text as a tree; raises ManifestError with one problem at the error's line and column."""
    try:
        decoder = _json_decoder()
        value, end = decoder.raw_decode(text, json.decoder.WHITESPACE.match(text, 0).end())
        end = json.decoder.WHITESPACE.match(text, end).end()
        if end != len(text):
            raise json.JSONDecodeError("Extra data", text, end)
        return value
    except _JsonProblem as e:
        line, col = _location(text, e.pos, e.at_char)
        message = e.message
    except json.JSONDecodeError as e:
        line, col = e.lineno, e.colno
        message = _SERDE_WORDS.get(e.msg, e.msg)
        if e.msg == "Expecting ',' delimiter":
            message = f"expected `,` or `{_container_at(text, e.pos)}`"
    except RecursionError:
        line, col, message = 1, 1, "recursion limit exceeded"
    raise ManifestError([(f"line {line}, column {col}", "valid JSON", f"a syntax error: {message}")])


# ---- YAML ----

#: The tag this reader gives every plain (unquoted, untagged) scalar: resolved by :func:`_plain`.
_PLAIN = "tag:remotemedia,2026:plain"
_DIGITS = {16: "0123456789abcdefABCDEF", 8: "01234567", 2: "01", 10: "0123456789"}


def _from_str_radix(text: str, radix: int, signed: bool) -> Any:
    """Rust's ``from_str_radix``: one optional sign (``-`` only when signed), then digits only."""
    body = text
    negative = False
    if body[:1] == "+" or (signed and body[:1] == "-"):
        negative = body[:1] == "-"
        body = body[1:]
    if not body or any(c not in _DIGITS[radix] for c in body):
        return None
    value = int(body, radix)
    return -value if negative else value


def _digits_but_not_number(v: str) -> bool:
    """Leading zeros followed by digits: a string in YAML 1.2 (``010``)."""
    v = v[1:] if v[:1] in ("-", "+") else v
    return len(v) > 1 and v.startswith("0") and all(c in "0123456789" for c in v[1:])


def _unsigned(v: str, bits: int) -> Any:
    unpositive = v[1:] if v.startswith("+") else v
    for prefix, radix in (("0x", 16), ("0o", 8), ("0b", 2)):
        if unpositive.startswith(prefix):
            rest = unpositive[2:]
            if rest[:1] in ("+", "-"):
                return None
            n = _from_str_radix(rest, radix, False)
            if n is not None and n < 2**bits:
                return n
    if unpositive[:1] in ("+", "-") or _digits_but_not_number(v):
        return None
    n = _from_str_radix(unpositive, 10, False)
    return n if n is not None and n < 2**bits else None


def _negative(v: str, bits: int) -> Any:
    for prefix, radix in (("-0x", 16), ("-0o", 8), ("-0b", 2)):
        if v.startswith(prefix):
            n = _from_str_radix("-" + v[3:], radix, True)
            if n is not None and -(2 ** (bits - 1)) <= n < 2 ** (bits - 1):
                return n
    if _digits_but_not_number(v):
        return None
    n = _from_str_radix(v, 10, True)
    return n if n is not None and -(2 ** (bits - 1)) <= n < 2 ** (bits - 1) else None


def _f64(v: str) -> Any:
    """serde_norway's ``parse_f64``: YAML's ``.inf``/``.nan`` spellings, else a finite Rust float."""
    from .validate import _rust_parses_f64  # the grammar of Rust's f64 parser

    unpositive = v
    if v.startswith("+"):
        unpositive = v[1:]
        if unpositive[:1] in ("+", "-"):
            return None
    if unpositive in (".inf", ".Inf", ".INF"):
        return math.inf
    if v in ("-.inf", "-.Inf", "-.INF"):
        return -math.inf
    if v in (".nan", ".NaN", ".NAN"):
        return math.nan
    if unpositive.strip() == unpositive and _rust_parses_f64(unpositive):
        x = float(unpositive)
        if math.isfinite(x):
            return x
    return None


def _plain(v: str) -> Any:
    """A plain scalar as serde_norway reads it (YAML 1.2 core schema: ``yes`` and ``010`` are
    strings, ``0o10`` is 8), then as the Rust tree keeps it (integers beyond 64 bits as floats)."""
    if v in ("", "~", "null", "Null", "NULL"):
        return None
    if v in ("true", "True", "TRUE"):
        return True
    if v in ("false", "False", "FALSE"):
        return False
    for parse in (lambda: _unsigned(v, 64), lambda: _negative(v, 64), lambda: _unsigned(v, 128), lambda: _negative(v, 128)):
        n = parse()
        if n is not None:
            return n if -(2**63) <= n < 2**64 else float(n)
    if not _digits_but_not_number(v):
        x = _f64(v)
        if x is not None:
            return x
    return v


def _loader_class() -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        """PyYAML with serde_norway's scalars instead of YAML 1.1's (no ``yes``, dates or ``=``)."""

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is yaml.ScalarNode and implicit[0]:
                return _PLAIN
            return super().resolve(kind, value, implicit)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            # Keys as the Rust tree holds them, text: `1` and `true` stay two keys (Python's 1 == True).
            if not isinstance(node, yaml.MappingNode):
                return super().construct_mapping(node, deep=deep)
            return {_key_text(self.construct_object(k, deep=deep)): self.construct_object(v, deep=deep) for k, v in node.value}

    Loader.add_constructor(_PLAIN, lambda loader, node: _plain(node.value))
    return Loader


def _yaml_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_yaml(node: Any, path: str, constructor: Any) -> None:
    """Refuses repeated keys and non-finite numbers, in document order (the first one wins)."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen = set()
        for knode, vnode in node.value:
            kind = {yaml.SequenceNode: "sequence", yaml.MappingNode: "map"}.get(type(knode))
            key = None if kind else constructor.construct_object(knode, deep=True)
            if kind or key is None:
                _yaml_problem(knode, path, f"invalid type: {kind or 'unit value'}, expected a string, number or boolean as a mapping key")
            text = _key_text(key)
            if text in seen:
                _yaml_problem(knode, path, f"duplicate key {json.dumps(text, ensure_ascii=False)}")
            seen.add(text)
            _check_yaml(vnode, _yaml_path(path, text), constructor)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_yaml(item, f"{path}[{i}]", constructor)
    elif isinstance(node, yaml.ScalarNode) and node.tag in (_PLAIN, "tag:yaml.org,2002:float"):
        value = constructor.construct_object(node)
        if isinstance(value, float) and not math.isfinite(value):
            shown = "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
            _yaml_problem(node, path, f"{shown} is not a finite number; manifests only hold finite numbers")


def _key_text(key: Any) -> str:
    from .schema import format_number

    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, (int, float)):
        return format_number(key)
    return str(key)


def _yaml_problem(node: Any, path: str, message: str) -> None:
    mark = node.start_mark
    found = f"a syntax error: {path}: {message}" if path else f"a syntax error: {message}"
    raise ManifestError([(f"line {mark.line + 1}, column {mark.column + 1}", "valid YAML", found)])


def parse_yaml(text: str) -> Any:
    """YAML text as a tree; raises ManifestError with one problem at the error's location."""
    import yaml

    loader = _loader_class()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_yaml(node, "", loader)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "document"
        raise ManifestError([(where, "valid YAML", f"a syntax error: {getattr(e, 'problem', None) or e}")]) from None
    finally:
        loader.dispose()
