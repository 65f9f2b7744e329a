"""Every relative link in the repository's Markdown files resolves: the file (or folder) exists and,
for a link into a Markdown file with ``#anchor``, a heading of that file has that anchor (GitHub's
rule: lower case, punctuation dropped, spaces to hyphens, ``-1``, ``-2`` ... for repeats). Links
inside code are not links and are skipped."""

import os
import re
import subprocess
from functools import lru_cache

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def markdown_files():
    out = subprocess.run(["git", "ls-files", "-z", "--", "*.md"], cwd=REPO, capture_output=True, check=True)
    return sorted(p for p in out.stdout.decode().split("\0") if p)


def prose(text):
    """The text without fenced code blocks and inline code."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading):
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"`|\*\*|__", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@lru_cache(maxsize=None)
def anchors(path):
    with open(path, encoding="utf-8") as f:
        text = FENCE.sub("", f.read())
    seen = {}
    out = set()
    for m in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, re.M):
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(md, root=REPO):
    path = os.path.join(root, md)
    with open(path, encoding="utf-8") as f:
        text = prose(f.read())
    problems = []
    for m in LINK.finditer(text):
        target = m.group(1) or m.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        if not os.path.exists(dest):
            problems.append(f"{md}: {target} -> {os.path.relpath(dest, root)} does not exist")
        elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
            problems.append(f"{md}: {target} -> no heading with the anchor #{anchor} in {os.path.relpath(dest, root)}")
    return problems


def test_the_slug_rule_on_known_headings():
    assert slug("## `remotemedia run`".lstrip("# ")) == "remotemedia-run"
    assert slug("Batch and cluster") == "batch-and-cluster"
    assert slug("Install (from source, or a wheel)") == "install-from-source-or-a-wheel"


def test_the_checker_finds_a_broken_link(tmp_path):
    (tmp_path / "a.md").write_text("# Top\n[ok](#top) [bad](b.md) [anchor](#nowhere) `[code](x.md)`\n")
    found = broken_links("a.md", root=str(tmp_path))
    assert len(found) == 2 and "b.md" in found[0] and "#nowhere" in found[1], found


@pytest.mark.parametrize("md", markdown_files())
def test_every_relative_link_resolves(md):
    assert broken_links(md) == []
