"""How deeply a manifest's text nests, read from the text before any parser sees it: the twin of
``src/manifest/nesting.rs``, line for line, so both runtimes refuse the same texts at the same
place.

PyYAML (like libyaml under the native reader) spends time proportional to the current nesting on
every token and its composer recurses once per level, so a deeply nested text is refused in one
linear pass before it is parsed. The scan follows what decides nesting in YAML (JSON included):
flow brackets, block indentation and ``- ``/``? `` entries, quoted and block scalars, plain scalars
and comments. On valid YAML it never counts more levels than the tree has; it may count fewer
(a block sequence written at its key's indentation is not counted), which the tree's own check
then catches.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

__all__ = ["too_deep", "too_deep_json"]

_FLOW = ",[]{}"
# Characters a plain scalar can end at, or that end the run of ordinary characters scanned at once.
_ORDINARY = re.compile(r"[^ \t#:,\[\]{}\"'\\]+")


class _Scan:
    def __init__(self, limit: int):
        self.limit = limit
        self.flow = 0
        self.blocks: List[int] = []
        self.quote: Optional[str] = None
        self.skip_above: Optional[int] = None
        self.expect = True
        self.plain = False
        self.token = 0
        self.line_no = 0

    def depth(self) -> int:
        return len(self.blocks) + self.flow

    def too_deep(self, column: int) -> None:
        if self.depth() > self.limit:
            raise _TooDeep(self.line_no, column + 1, self.depth())

    def block_at(self, col: int) -> None:
        if not self.blocks or col > self.blocks[-1]:
            self.blocks.append(col)
            self.too_deep(col)

    def innermost(self) -> int:
        return self.blocks[-1] if self.blocks else -1

    def ends_indicator(self, n: Optional[str]) -> bool:
        return n is None or n == " " or n == "\t" or (self.flow > 0 and n in _FLOW)

    def mapping_value(self) -> None:
        if self.flow == 0:
            self.block_at(self.token)
        self.expect = True

    def line(self, chars: str) -> None:
        i = 0
        n = len(chars)
        if self.quote is None and self.flow == 0:
            indent = len(chars) - len(chars.lstrip(" "))
            rest = chars[indent:]
            if not rest or rest[0] == "#":
                return
            if self.skip_above is not None:
                if indent > self.skip_above:
                    return
                self.skip_above = None
            if chars[:3] in ("---", "...") and (n == 3 or chars[3] in " \t"):
                self.blocks.clear()
                i = 3
            elif indent == 0 and rest[0] == "%":
                return  # a directive
            else:
                while self.blocks and self.blocks[-1] > indent:
                    self.blocks.pop()
                i = indent
            self.expect = True
            self.plain = False
        while i < n:
            c = chars[i]
            nxt = chars[i + 1] if i + 1 < n else None
            q = self.quote
            if q is not None:
                if q == '"' and c == "\\":
                    i += 2
                    continue
                if c == q:
                    if q == "'" and nxt == "'":
                        i += 2
                        continue
                    self.quote = None
                    self.expect = False
                i += 1
                continue
            if c == " " or c == "\t":
                i += 1
                continue
            if c == "#" and (i == 0 or chars[i - 1] in " \t"):
                break  # a comment
            if self.plain:
                if self.flow > 0 and c in _FLOW:
                    self.plain = False  # the scalar ends here; the indicator is read below
                elif c == ":" and self.ends_indicator(nxt):
                    self.plain = False
                    self.mapping_value()
                    i += 1
                    continue
                else:
                    # Ordinary characters of the scalar, many at a time (the Rust scan takes them
                    # one by one; the outcome is the same).
                    m = _ORDINARY.match(chars, i)
                    i = m.end() if m else i + 1
                    continue
            if c in "[{":
                self.token = i
                self.flow += 1
                self.too_deep(i)
                self.expect = True
            elif c in "]}":
                self.flow = max(self.flow - 1, 0)
                self.expect = False
            elif c == "," and self.flow > 0:
                self.expect = True
            elif c in "\"'" and self.expect:
                self.token = i
                self.quote = c
            elif c == "-" and self.flow == 0 and self.expect and self.ends_indicator(nxt):
                self.block_at(i)
            elif c == "?" and self.expect and self.ends_indicator(nxt):
                if self.flow == 0:
                    self.block_at(i)
            elif c == ":" and (not self.expect or self.ends_indicator(nxt)):
                if self.expect and self.flow == 0:
                    self.block_at(i)  # the value of an explicit `? key`
                elif not self.expect:
                    self.mapping_value()
                self.expect = True
            elif c in "|>" and self.expect and self.flow == 0:
                # A block scalar: its header ends the line, its content is the more indented lines.
                self.skip_above = self.innermost()
                return
            elif c in "&!*" and self.expect:
                # An anchor or tag (a node follows) or an alias (a whole node).
                while i + 1 < n and chars[i + 1] not in " \t" and not (self.flow > 0 and chars[i + 1] in _FLOW):
                    i += 1
                self.expect = c != "*"
                self.token = i + 1
            else:
                self.token = i
                self.plain = True
                self.expect = False
            i += 1
        if self.flow == 0 and self.quote is None:
            if self.plain:
                # A plain scalar goes on over the lines indented more than its collection.
                self.skip_above = self.innermost()
            self.plain = False


class _TooDeep(Exception):
    def __init__(self, line: int, column: int, depth: int):
        self.where = (line, column, depth)


def too_deep(text: str, limit: int) -> Optional[Tuple[int, int, int]]:
    """``(line, column, depth)`` of the first place where the text's lists and mappings nest
    deeper than ``limit`` (the top-level collection is level 1), or None."""
    s = _Scan(limit)
    try:
        for line in text.split("\n"):
            s.line_no += 1
            s.line(line[:-1] if line.endswith("\r") else line)
    except _TooDeep as e:
        return e.where
    return None


# A JSON string (to its closing quote, or to the end of an unterminated one) or a bracket.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?$)|[\[\]{}]', re.DOTALL)


def too_deep_json(text: str, limit: int) -> Optional[Tuple[int, int, int]]:
    """As :func:`too_deep` for JSON text: only brackets outside strings count (``check_json`` in
    src/manifest/nesting.rs)."""
    depth = 0
    for m in _JSON_TOKEN.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > limit:
                pos = m.start()
                return text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos), depth
        elif c in "]}":
            depth = max(depth - 1, 0)
    return None
