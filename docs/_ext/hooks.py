"""MkDocs hooks: pages that show files other parts of the project produce, when they exist.

* ``<!-- optional-include: PATH -->`` in a page is replaced by the Markdown file ``PATH`` (relative
  to the repository root), its headings demoted one level, or by a note saying that the file has not
  been produced yet. Images it links to (relative to its folder) are published next to the page;
  other relative links become code spans, since they point outside the site.
* ``<!-- figures: DIR -->`` is replaced by every ``.png``/``.svg`` in ``docs/DIR``, sorted by name,
  or by a note when there are none.
* A line that looks like a ``pymdownx.snippets`` marker but is not one (``--8 < --"file"``, what a
  Python formatter makes of ``--8<-- "file"`` inside a ``python`` code block) is a warning, so the
  strict build fails instead of showing the mangled marker where the file should be. Wrap such a
  block in ``<!-- fmt: off -->`` / ``<!-- fmt: on -->`` so that ``ruff format`` leaves it alone.

Strict builds stay meaningful: nothing here hides a broken link in the hand-written pages.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.scrapl")

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_INCLUDE = re.compile(r"<!--\s*optional-include:\s*(?P<path>\S+)\s*-->")
_FIGURES = re.compile(r"<!--\s*figures:\s*(?P<dir>\S+)\s*-->")
_LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SNIPPET_LIKE = re.compile(r"^\s*-+\s*8\s*<\s*-+")  # anything that starts like --8<--
_SNIPPET = re.compile(r'^\s*--8<-- "[^"]+"\s*$')  # the one form pymdownx.snippets reads
_IMAGE_SUFFIXES = {".png", ".svg", ".jpg", ".jpeg", ".gif"}
_ASSETS = "included"  # published images of included files go to site/included/<path>


def _included_paths(markdown: str) -> list[str]:
    return [m["path"] for m in _INCLUDE.finditer(markdown)]


def _is_relative(target: str) -> bool:
    return not re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", target, flags=re.IGNORECASE)


def _demote_headings(text: str) -> str:
    out, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            line = "#" + line
        out.append(line)
    return "\n".join(out)


def _rewrite_links(text: str, source: Path, page_depth: int) -> str:
    up = "../" * page_depth

    def sub(m: re.Match) -> str:
        target = m["target"]
        if not _is_relative(target):
            return m[0]
        path = (source.parent / target.split("#")[0]).resolve()
        if path.suffix.lower() in _IMAGE_SUFFIXES and path.is_file() and path.is_relative_to(ROOT):
            rel = path.relative_to(ROOT).as_posix()
            return f"{m['bang']}[{m['text']}]({up}{_ASSETS}/{rel}{m['title'] or ''})"
        return f"{m['text']} (`{path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else target}`)"

    return _LINK.sub(sub, text)


def _include(match: re.Match, page_src: str) -> str:
    rel = match["path"]
    source = ROOT / rel
    if not source.is_file():
        return (
            f'!!! note "Not produced yet"\n    `{rel}` does not exist in this checkout yet; '
            f"it appears here once it is committed.\n"
        )
    depth = len(Path(page_src).parts) - 1
    text = _rewrite_links(source.read_text(encoding="utf-8"), source, depth)
    return f"*Included from `{rel}`.*\n\n" + _demote_headings(text) + "\n"


def _figures(match: re.Match, page_src: str) -> str:
    folder = DOCS / match["dir"]
    figures = (
        sorted(p for p in folder.glob("*") if p.suffix.lower() in _IMAGE_SUFFIXES) if folder.is_dir() else []
    )
    if not figures:
        return (
            f'!!! note "Not produced yet"\n    No figures in `docs/{match["dir"]}` yet; '
            f"they appear here once they are committed.\n"
        )
    page_dir = (DOCS / page_src).parent
    lines = []
    for fig in figures:
        title = fig.stem.replace("_", " ").replace("-", " ")
        rel = Path(*([".."] * len(page_dir.relative_to(DOCS).parts)), fig.relative_to(DOCS)).as_posix()
        lines.append(f"### {title}\n\n![{title}]({rel})\n")
    return "\n".join(lines)


def on_files(files: Files, config, **kwargs) -> Files:
    """Publish the images that optionally included files link to."""
    for page in DOCS.rglob("*.md"):
        if "_ext" in page.parts:
            continue
        for rel in _included_paths(page.read_text(encoding="utf-8")):
            source = ROOT / rel
            if not source.is_file():
                continue
            for m in _LINK.finditer(source.read_text(encoding="utf-8")):
                target = m["target"]
                if not _is_relative(target):
                    continue
                path = (source.parent / target.split("#")[0]).resolve()
                if path.suffix.lower() in _IMAGE_SUFFIXES and path.is_file() and path.is_relative_to(ROOT):
                    src_uri = f"{_ASSETS}/{path.relative_to(ROOT).as_posix()}"
                    if files.get_file_from_path(src_uri) is None:
                        files.append(File.generated(config, src_uri, abs_src_path=str(path)))
    return files


def _check_snippet_markers(markdown: str, src: str) -> None:
    for n, line in enumerate(markdown.splitlines(), 1):
        if _SNIPPET_LIKE.match(line) and not _SNIPPET.match(line):
            log.warning(f'{src}:{n}: malformed snippet marker {line.strip()!r} (expected --8<-- "path")')


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    """Check the snippet markers; expand the optional includes and figure lists of a page."""
    src = page.file.src_uri
    _check_snippet_markers(markdown, src)
    markdown = _INCLUDE.sub(lambda m: _include(m, src), markdown)
    return _FIGURES.sub(lambda m: _figures(m, src), markdown)
