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


def _yaml_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_yaml(node: Any, path: str, constructor: Any) -> None:
    """Refuses repeated keys and non-finite numbers, in document order (the first one wins)."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen = set()
        for knode, vnode in node.value:
            key = constructor.construct_object(knode, deep=True)
            text = _key_text(key)
            if text in seen:
                _yaml_problem(knode, path, f"duplicate key {json.dumps(text, ensure_ascii=False)}")
            seen.add(text)
            _check_yaml(vnode, _yaml_path(path, text), constructor)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_yaml(item, f"{path}[{i}]", constructor)
    elif isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:float":
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

    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "document"
            raise ManifestError([(where, "valid YAML", f"a syntax error: {getattr(e, 'problem', None) or e}")]) from None
        if node is None:
            return None
        _check_yaml(node, "", loader)
        return loader.construct_document(node)
    finally:
        loader.dispose()
