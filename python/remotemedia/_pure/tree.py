"""Reading manifest text into a tree as strictly as the Rust reader (``src/manifest/tree.rs``):
a key repeated within one mapping and a number that is not finite (JSON ``NaN``/``Infinity``/
``1e400``, YAML ``.nan``/``.inf``) are problems with the same line, column and wording, instead of
being silently merged or kept. A JSON text cut short is placed after its end in serde_json's
words, and a YAML control character where it stands in the words the engine uses too; other
syntax errors keep the Python parsers' positions, their messages in serde_json's words where the
two parsers mean the same thing. With the native extension present, ``Pipeline`` reads manifest
files and text natively (``_native.read_manifest``) and this module only tells text from a path.

The manifest limits (:mod:`remotemedia.limits`) are held as the Rust reader holds them: the text's
size and nesting before it is parsed (``nesting.py``), then, value by value in document order,
how many values the tree has (a YAML alias counts its value again at every use), how deep they
nest and how long a string is, each with the same problem as the native reader's. Any error
reading a manifest is a :class:`ManifestError` (or ``FileNotFoundError`` for a missing file).
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import math
import os
import re
import stat
from typing import Any, Dict, List, Optional, Tuple

from ..errors import ManifestError, Problem
from ..limits import MANIFEST_BYTES, MANIFEST_NESTING, MANIFEST_STRING_BYTES, MANIFEST_VALUES
from .nesting import too_deep, too_deep_json

__all__ = ["parse_str", "parse_json", "parse_yaml", "manifest_source", "read_file", "check_text", "limit_problems"]


def parse_str(text: str) -> Any:
    """Manifest text as a tree: JSON if it starts with ``{``, YAML otherwise (as ``parse_str`` in Rust)."""
    return parse_json(text) if text.lstrip().startswith("{") else parse_yaml(text)


# ---- the manifest limits (src/manifest/mod.rs words) ----


def _utf8_len(s: str) -> int:
    # Most strings are far below the limit in characters, which bounds their bytes too.
    return len(s) if len(s) * 4 <= MANIFEST_STRING_BYTES or s.isascii() else len(s.encode("utf-8", "surrogatepass"))


def size_problem(nbytes: int) -> Problem:
    return Problem("manifest", f"a manifest of at most {MANIFEST_BYTES} bytes", f"{nbytes} bytes")


def nesting_problem(path: str, depth: int) -> Problem:
    return Problem(path, f"lists and mappings nested at most {MANIFEST_NESTING} deep", f"a list or mapping nested {depth} deep")


def values_problem(found: str) -> Problem:
    return Problem(
        "manifest",
        f"at most {MANIFEST_VALUES} values (lists, mappings and scalars; a YAML alias counts its value at every use)",
        found,
    )


def string_problem(nbytes: int, head: str) -> Problem:
    shown = json.dumps(head[:60] + "…", ensure_ascii=False)
    return Problem("manifest", f"strings of at most {MANIFEST_STRING_BYTES} bytes", f"a string of {nbytes} bytes: {shown}")


def not_regular_problem(directory: bool) -> Problem:
    found = "a directory" if directory else "a FIFO, socket or device (not opened: reading one can block)"
    return Problem("manifest", "a regular file", found)


def not_readable_problem(reason: str) -> Problem:
    return Problem("manifest", "a readable file", reason)


def utf8_problem(at: int) -> Problem:
    return Problem("manifest", "UTF-8 text", f"bytes that are not UTF-8 (from byte {at})")


class _Limit(Exception):
    """A manifest limit crossed while a tree was read (raised as its ManifestError)."""

    def __init__(self, problem: Problem):
        self.problem = problem


def _check_string(s: str) -> None:
    if len(s) > MANIFEST_STRING_BYTES // 4:
        n = _utf8_len(s)
        if n > MANIFEST_STRING_BYTES:
            raise _Limit(string_problem(n, s))


def check_text(text: str, scan: Any = too_deep) -> None:
    """The limits a text must meet before it is parsed: its size and how deeply it nests
    (``scan``: :func:`too_deep` for YAML, :func:`too_deep_json` for JSON)."""
    n = len(text)
    if n > MANIFEST_BYTES or (n * 4 > MANIFEST_BYTES and not text.isascii()):
        n = len(text.encode("utf-8", "surrogatepass"))
    if n > MANIFEST_BYTES:
        raise ManifestError([size_problem(n)])
    deep = scan(text, MANIFEST_NESTING)
    if deep is not None:
        line, column, depth = deep
        raise ManifestError([nesting_problem(f"line {line}, column {column}", depth)])


_PLAIN_TYPES = frozenset((int, float, bool, type(None)))


def limit_problems(tree: Any) -> Optional[Problem]:
    """The manifest limits of a tree given as Python values (``Pipeline.from_dict``, or a JSON
    text already read), checked in document order as the readers check them while they build one:
    values (a list or dict met twice counts twice), nesting (a container inside itself is refused
    for its depth), string length. None when it is within them. The twin of ``check_tree`` in
    src/manifest/validate.rs."""
    try:
        _Counter().visit(tree, 0)
    except _Limit as e:
        return e.problem
    return None


class _Counter:
    def __init__(self) -> None:
        self.values = 0

    def add(self, n: int) -> None:
        self.values += n
        if self.values > MANIFEST_VALUES:
            raise _Limit(values_problem("more values"))

    def visit(self, v: Any, depth: int) -> None:
        self.add(1)
        if isinstance(v, str):
            _check_string(v)
        elif isinstance(v, (list, tuple)):
            if depth + 1 > MANIFEST_NESTING:
                raise _Limit(nesting_problem("manifest", depth + 1))
            self.items(v, depth + 1)
        elif isinstance(v, dict):
            if depth + 1 > MANIFEST_NESTING:
                raise _Limit(nesting_problem("manifest", depth + 1))
            keys = list(v)
            if all(type(k) is str for k in keys) and max(map(len, keys), default=0) <= MANIFEST_STRING_BYTES // 4:
                self.items(list(v.values()), depth + 1)
            else:
                for k, x in v.items():
                    if isinstance(k, str):
                        _check_string(k)
                    self.visit(x, depth + 1)

    def items(self, items: Any, depth: int) -> None:
        # Plain numbers, booleans and None only: counted at once (a million-value list would
        # otherwise cost seconds here).
        if set(map(type, items)) <= _PLAIN_TYPES:
            self.add(len(items))
            return
        for x in items:
            self.visit(x, depth)


def manifest_source(path_or_text: Any, yaml: bool = False) -> Tuple[Optional[str], Optional[str]]:
    """``(text, None)`` when ``path_or_text`` is manifest text (a ``str`` starting with ``{`` or
    ``[``, or, for YAML, containing a newline), else ``(None, path)``: the file it names, for
    read_file or the native reader, which read it alike: refused before reading when
    larger than the limit, never read beyond it, and a file that is not UTF-8 is a ManifestError
    saying where (``FileNotFoundError`` for a missing file)."""
    if isinstance(path_or_text, str):
        s = path_or_text.lstrip()
        if s.startswith(("{", "[")) or (yaml and "\n" in path_or_text):
            return path_or_text, None
    try:
        path = os.fspath(path_or_text)
    except TypeError:
        raise ManifestError([("manifest", "manifest text or a file path", f"a {type(path_or_text).__name__}")]) from None
    if isinstance(path, bytes) and b"\0" in path or isinstance(path, str) and "\0" in path:
        raise ManifestError([("manifest", "a file path", f"a path with a NUL character: {path!r}")])
    return None, os.fsdecode(path)


def read_file(path: str) -> str:
    """A manifest file's text, read as the native reader reads one (``manifest::read_text``):
    only a regular file is opened (a FIFO or device could block the read forever), one larger than
    the limit is refused before it is read, and one that is not UTF-8 is a ManifestError saying
    where; a missing file raises ``FileNotFoundError``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise
    except OSError as e:  # a symlink loop, a path through a file, no permission
        raise ManifestError([not_readable_problem(e.strerror or str(e))], source=path) from None
    if not stat.S_ISREG(st.st_mode):
        raise ManifestError([not_regular_problem(stat.S_ISDIR(st.st_mode))], source=path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MANIFEST_BYTES:
            raise ManifestError([size_problem(size)], source=path)
        data = f.read(MANIFEST_BYTES + 1)
    if len(data) > MANIFEST_BYTES:
        raise ManifestError([size_problem(len(data))], source=path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError([utf8_problem(e.start)], source=path) from None


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

    values = [0]

    def scan_once(s: str, idx: int) -> Tuple[Any, int]:
        c = s[idx:idx + 1]
        if c in ("N", "I"):  # NaN, Infinity: not JSON
            raise _JsonProblem(idx, "expected value", at_char=True)
        if s.startswith("-I", idx):
            raise _JsonProblem(idx + 1, "invalid number", at_char=True)
        values[0] += 1
        if values[0] > MANIFEST_VALUES:
            raise _Limit(values_problem("more values"))
        value, end = inner(s, idx)
        if isinstance(value, float) and not math.isfinite(value):
            raise _JsonProblem(end, "number out of range", at_char=False)
        if isinstance(value, str):
            _check_string(value)
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
            _check_string(key)
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

    def parse_int(digits: str) -> Any:
        # serde_json reads an integer beyond 64 bits as a float: one of more than 309 digits is
        # infinite (and int() refuses more than 4300 digits with a ValueError).
        return int(digits) if len(digits.lstrip("-")) <= 309 else float(digits)

    decoder.parse_object = parse_object  # type: ignore[assignment]
    decoder.parse_array = parse_array  # type: ignore[assignment]
    decoder.parse_int = parse_int  # type: ignore[assignment]
    inner = json.scanner.py_make_scanner(decoder)
    decoder.scan_once = scan_once  # type: ignore[assignment]
    return decoder


def _open_at(text: str) -> Tuple[List[str], bool, str]:
    """Where a JSON prefix stands: the closers of the lists and objects still open (``}``/``]``,
    innermost last), whether it ends inside a string, and its last character that is not space."""
    stack: List[str] = []
    in_string = escaped = False
    last = ""
    for c in text:
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
        if not c.isspace():
            last = c
    return stack, in_string, last


def _container_at(text: str, pos: int) -> str:
    """``}`` or ``]``: what closes the innermost list or object open at ``pos``."""
    stack = _open_at(text[:pos])[0]
    return stack[-1] if stack else "}"


def _eof_words(text: str) -> str:
    """serde_json's words for a JSON text cut short: in a string, where a value is due (at the
    start, after ``,`` or ``:``), or else in the innermost list or object."""
    stack, in_string, last = _open_at(text)
    if in_string:
        return "EOF while parsing a string"
    if not stack or last in ",:":
        return "EOF while parsing a value"
    return f"EOF while parsing {'an object' if stack[-1] == '}' else 'a list'}"


class _Slow(Exception):
    """Something the exact reader below must place and word."""


def _refuse(*_: Any) -> Any:
    raise _Slow


def _pairs(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Slow  # a repeated key
    return obj


def _finite(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise _Slow
    return x


def _int(text: str) -> Any:
    # serde_json reads an integer beyond 64 bits as a float: one of more than 309 digits is
    # infinite (JSON has no leading zeros), a number out of range.
    if len(text.lstrip("-")) > 309:
        raise _Slow
    return int(text)


def _fast_json(text: str) -> Any:
    """The tree of a JSON text without repeated keys, non-finite numbers or syntax errors, read by
    the json module's C scanner (the exact reader is pure Python: ~15 s for a million values);
    ``_Slow`` for anything else, which the exact reader then places and words."""
    # The integer hook only where an integer could be too long (a call per number costs).
    ints = {"parse_int": _int} if _LONG_DIGITS.search(text) else {}
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_refuse, parse_float=_finite, **ints)
    except (ValueError, RecursionError):
        raise _Slow from None


_LONG_DIGITS = re.compile(r"[0-9]{310}")


def parse_json(text: str) -> Any:
    """JSON text as a tree; raises ManifestError with one problem at the error's line and column."""
    check_text(text, too_deep_json)
    try:
        tree = _fast_json(text)
    except _Slow:
        pass
    else:
        # Nothing but a limit can be wrong with it now; the first one crossed in document order,
        # as the native reader meets it while it reads.
        limit = limit_problems(tree)
        if limit is not None:
            raise ManifestError([limit])
        return tree
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
        if e.pos >= len(text) or e.msg.startswith("Unterminated string"):
            # Cut short: where the text ends, in serde_json's words (Python places an
            # unterminated string at its start).
            line, col = _location(text, len(text), True)
            message = _eof_words(text)
        elif e.msg == "Expecting ',' delimiter":
            message = f"expected `,` or `{_container_at(text, e.pos)}`"
    except _Limit as e:
        raise ManifestError([e.problem]) from None
    except RecursionError:  # not expected within the nesting limit; still the same verdict
        raise ManifestError([nesting_problem("manifest", MANIFEST_NESTING + 1)]) from None
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
    if len(body.lstrip("0")) > 128:
        return None  # beyond 128 bits in any radix (and beyond what int() parses quickly)
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


def _alias_uses(root: Any) -> Tuple[int, set]:
    """The document's events as serde_norway counts them (scalars, aliases, collection starts and
    ends), and the references that are alias uses, as ``(id(parent), slot)``: a node met again
    in document order is met through an alias."""
    import yaml

    events = 0
    aliases: set = set()
    seen: set = set()
    stack: List[Tuple[Any, int, Any]] = [(None, 0, root)]
    while stack:
        parent, slot, node = stack.pop()
        if id(node) in seen:
            events += 1
            aliases.add((id(parent), slot))
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            events += 1
        elif isinstance(node, yaml.SequenceNode):
            events += 2
            stack.extend((node, i, node.value[i]) for i in reversed(range(len(node.value))))
        else:
            events += 2
            for i in reversed(range(len(node.value))):
                k, v = node.value[i]
                stack.append((node, 2 * i + 1, v))
                stack.append((node, 2 * i, k))
    return events, aliases


def _check_yaml(root: Any, constructor: Any) -> None:
    """Reads the composed document as the native reader deserializes it, in document order, every
    alias followed: refuses repeated keys, keys that are collections, non-finite numbers, and
    trees beyond the manifest limits (values, nesting, string length), the first one met winning.
    Alias uses are counted as serde_norway counts them (more than 100 per event of the document
    is its "repetition limit"); the values limit stops an alias bomb after a million values.

    Each node's expanded size, alias uses and height are known beforehand (``_Sizes``), so the
    walk steps over every subtree that can cross nothing and holds no problem: an alias bomb costs
    what its text does, not the million values its expansion is refused at."""
    import yaml

    events, aliases = _alias_uses(root)
    sizes = _Sizes(aliases, constructor)
    sizes.of(root)
    budget = {"values": 0, "jumps": 0}
    max_jumps = 100 * events

    def jump() -> None:
        budget["jumps"] += 1
        if budget["jumps"] > max_jumps:
            raise _Limit(values_problem("YAML aliases used more than 100 times per event of the document"))

    def walk(node: Any, depth: int, path: str) -> None:
        values, jumps, height, bad = sizes.memo[id(node)]
        if (not bad and budget["values"] + values <= MANIFEST_VALUES and budget["jumps"] + jumps <= max_jumps
                and depth + height <= MANIFEST_NESTING):
            budget["values"] += values
            budget["jumps"] += jumps
            return
        budget["values"] += 1
        if budget["values"] > MANIFEST_VALUES:
            raise _Limit(values_problem("more values"))
        if isinstance(node, yaml.MappingNode):
            if depth + 1 > MANIFEST_NESTING:
                raise _Limit(nesting_problem("manifest", depth + 1))
            seen = set()
            for i, (knode, vnode) in enumerate(node.value):
                if (id(node), 2 * i) in aliases:
                    jump()
                problem, text = _key_problem(knode, constructor)
                if problem is not None:
                    _yaml_problem(knode, path, problem)
                _check_string(text)
                if text in seen:
                    _yaml_problem(knode, path, f"duplicate key {json.dumps(text, ensure_ascii=False)}")
                seen.add(text)
                if (id(node), 2 * i + 1) in aliases:
                    jump()
                walk(vnode, depth + 1, _yaml_path(path, text))
        elif isinstance(node, yaml.SequenceNode):
            if depth + 1 > MANIFEST_NESTING:
                raise _Limit(nesting_problem("manifest", depth + 1))
            for i, item in enumerate(node.value):
                if (id(node), i) in aliases:
                    jump()
                walk(item, depth + 1, f"{path}[{i}]")
        else:
            problem = _scalar_problem(node, constructor)
            if problem is not None:
                _yaml_problem(node, path, problem)
            _check_string(_scalar_text(node, constructor))

    walk(root, 0, "")


def _key_problem(knode: Any, constructor: Any) -> Tuple[Optional[str], str]:
    """What is wrong with a mapping key by itself (not its length or repetition), and its text."""
    import yaml

    kind = {yaml.SequenceNode: "sequence", yaml.MappingNode: "map"}.get(type(knode))
    key = None if kind else constructor.construct_object(knode, deep=True)
    if kind or key is None:
        return f"invalid type: {kind or 'unit value'}, expected a string, number or boolean as a mapping key", ""
    return None, _key_text(key)


def _scalar_problem(node: Any, constructor: Any) -> Optional[str]:
    if node.tag in (_PLAIN, "tag:yaml.org,2002:float"):
        value = constructor.construct_object(node)
        if isinstance(value, float) and not math.isfinite(value):
            shown = "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
            return f"{shown} is not a finite number; manifests only hold finite numbers"
    return None


def _scalar_text(node: Any, constructor: Any) -> str:
    """The string a scalar is, if it is one (else empty: only strings have a length limit)."""
    if node.tag in (_PLAIN, "tag:yaml.org,2002:float"):
        value = constructor.construct_object(node)
        return value if isinstance(value, str) else ""
    return node.value if isinstance(node.value, str) else ""


def _too_long(s: str) -> bool:
    return len(s) > MANIFEST_STRING_BYTES // 4 and _utf8_len(s) > MANIFEST_STRING_BYTES


class _Sizes:
    """Per node of a composed document: ``(values, alias uses, height, bad)`` of its subtree with
    every alias expanded -- values as the native reader counts them, alias uses below it, how many
    levels of lists and mappings it adds, and whether something in it is a problem by itself (a
    key, a repeated key, a string, a number). A node inside its own expansion (an alias cycle) is
    infinite and bad, so a walk never steps over it."""

    INFINITE = float("inf")

    def __init__(self, aliases: set, constructor: Any):
        self.aliases = aliases
        self.constructor = constructor
        self.memo: Dict[int, Tuple[Any, Any, Any, bool]] = {}
        self.open: set = set()

    def of(self, node: Any) -> Tuple[Any, Any, Any, bool]:
        import yaml

        known = self.memo.get(id(node))
        if known is not None:
            return known
        if id(node) in self.open:
            inf = self.INFINITE
            return inf, inf, inf, True
        self.open.add(id(node))
        if isinstance(node, yaml.MappingNode):
            values, jumps, height, bad = 1, 0, 0, False
            seen = set()
            for i, (knode, vnode) in enumerate(node.value):
                jumps += ((id(node), 2 * i) in self.aliases) + ((id(node), 2 * i + 1) in self.aliases)
                problem, text = _key_problem(knode, self.constructor)
                bad = bad or problem is not None or text in seen or _too_long(text)
                seen.add(text)
                v, j, h, b = self.of(vnode)
                values, jumps, height, bad = values + v, jumps + j, max(height, h), bad or b
            result = (values, jumps, height + 1, bad)
        elif isinstance(node, yaml.SequenceNode):
            values, jumps, height, bad = 1, 0, 0, False
            for i, item in enumerate(node.value):
                jumps += (id(node), i) in self.aliases
                v, j, h, b = self.of(item)
                values, jumps, height, bad = values + v, jumps + j, max(height, h), bad or b
            result = (values, jumps, height + 1, bad)
        else:
            bad = _scalar_problem(node, self.constructor) is not None or _too_long(_scalar_text(node, self.constructor))
            result = (1, 0, 0, bad)
        self.open.discard(id(node))
        # A result that met an open node (a cycle) stands only for this walk down: not kept.
        if result[0] != self.INFINITE:
            self.memo[id(node)] = result
        else:
            self.memo.setdefault(id(node), result)
        return result


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

    check_text(text)
    loader = None
    try:
        # The reader refuses control characters as it is built.
        loader = _loader_class()(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_yaml(node, loader)
        return loader.construct_document(node)
    except _Limit as e:
        raise ManifestError([e.problem]) from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        column = e.position - text.rfind("\n", 0, e.position)
        found = f"a syntax error: unacceptable character #x{e.character:04x}: {e.reason}"
        raise ManifestError([(f"line {line}, column {column}", "valid YAML", found)]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "document"
        raise ManifestError([(where, "valid YAML", f"a syntax error: {getattr(e, 'problem', None) or e}")]) from None
    except RecursionError:
        # PyYAML's composer recurses per level; within the nesting scan's bounds this is not
        # expected, and the native reader refuses such a tree for its nesting.
        raise ManifestError([nesting_problem("manifest", MANIFEST_NESTING + 1)]) from None
    finally:
        if loader is not None:
            loader.dispose()
