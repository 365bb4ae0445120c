"""The documentation's code runs as written, and the site builds with warnings as errors.

Every top-level ```python block of a page under ``docs/`` runs, in page order, in one namespace
per page (later blocks use what earlier ones defined), in a temporary working directory. A block
right after ``<!-- not-run: reason -->`` is skipped (the reason is required); a ```text block right
after ``<!-- expected-output -->`` must equal what the previous python block printed.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_ext" not in p.parts and "_snippets" not in p.parts)

_FENCE_OPEN = re.compile(r"^```(?P<lang>[\w-]*)")
_MARKER = re.compile(r"^<!--\s*(?P<kind>not-run|expected-output)\s*:?\s*(?P<reason>.*?)\s*-->$")


@dataclass
class Block:
    lang: str
    code: str
    line: int
    marker: str | None
    reason: str


def blocks(page: Path) -> list[Block]:
    """Top-level fenced blocks of a page, with the marker comment right above each (if any)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out, i, marker, reason = [], 0, None, ""
    while i < len(lines):
        line = lines[i]
        m = _MARKER.match(line.strip())
        if m and not line.startswith(" "):
            marker, reason = m["kind"], m["reason"]
            i += 1
            continue
        fence = _FENCE_OPEN.match(line)
        if fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            out.append(Block(fence["lang"], "\n".join(lines[i + 1 : end]), i + 1, marker, reason))
            i, marker, reason = end + 1, None, ""
            continue
        if line.strip():
            marker, reason = None, ""
        i += 1
    return out


def _page_id(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


def test_pages_found():
    names = {_page_id(p) for p in PAGES}
    assert {"getting-started.md", "guides/training.md", "guides/hyperparameters.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_markers_are_well_formed(page):
    found = blocks(page)
    for prev, block in zip([None, *found], found, strict=False):
        if block.marker == "not-run":
            assert block.lang == "python" and block.reason, f"{page}:{block.line}: not-run needs a reason"
        if block.marker == "expected-output":
            assert block.lang == "text" and prev is not None and prev.lang == "python", (
                f"{page}:{block.line}: expected-output must be a text block after a python block"
            )


@pytest.mark.parametrize(
    "page", [p for p in PAGES if any(b.lang == "python" for b in blocks(p))], ids=_page_id
)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    # the examples are tiny: one thread is faster, and much faster on a shared machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _run_page(page)
    finally:
        torch.set_num_threads(threads)


def _run_page(page: Path) -> None:
    namespace: dict = {"__name__": "__docs__"}
    printed = ""
    for block in blocks(page):
        if block.lang == "text" and block.marker == "expected-output":
            assert printed.strip() == block.code.strip(), f"{page}:{block.line}: output differs"
            continue
        if block.lang != "python" or block.marker == "not-run":
            continue
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            try:
                exec(compile(block.code, f"{page}:{block.line}", "exec"), namespace)
            except Exception as err:  # noqa: BLE001 - re-raised with the block's location
                raise AssertionError(f"{page}:{block.line}: the code block failed: {err!r}") from err
        printed = buf.getvalue()


_SNIPPET_LIKE = re.compile(r"^\s*-+\s*8\s*<\s*-+")
_SNIPPET = re.compile(r'^\s*--8<-- "(?P<path>[^"]+)"\s*$')


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_snippet_markers_include_existing_files(page):
    """Every ``--8<--`` line is the exact marker of an existing file: a formatter that rewrites it
    (``--8 < --"f"``) would show the marker instead of the file, with no other error."""
    for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if not _SNIPPET_LIKE.match(line):
            continue
        m = _SNIPPET.match(line)
        assert m is not None, f"{page}:{n}: malformed snippet marker {line.strip()!r}"
        assert (ROOT / m["path"]).is_file(), f"{page}:{n}: {m['path']} does not exist"


def test_site_builds_strictly(tmp_path):
    """`mkdocs build --strict` (needs the docs extra): a broken link, anchor or docstring fails."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "site" / "guides" / "training" / "index.html").is_file()
