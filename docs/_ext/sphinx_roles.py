"""Griffe extension: turn the Sphinx roles of scrapl's docstrings into mkdocstrings cross-references.

The docstrings are written for a plain ``help()`` and for Sphinx alike: ``:class:`~scrapl.SCRAPLLoss```,
``:meth:`attach_params```, ``:mod:`scrapl.warmup```. Markdown has no roles, so, once the package is
loaded, every role becomes an *optional* autoref: a link when the target is documented on the site,
plain code otherwise (never a broken-link warning). A relative name is looked up on the object, its
class, its module and the package, in that order; ``~`` keeps only the last component as the title.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|attr|mod|obj|data|exc|const):`(?P<tilde>~?)(?P<target>[^`]+)`"
)


def _candidates(obj: griffe.Object, target: str) -> list[str]:
    target = target.strip().lstrip(".")
    scopes: list[str] = []
    node: Any = obj
    while node is not None:
        scopes.append(node.path)
        node = node.parent
    return [target] + [f"{scope}.{target}" for scope in scopes]


def _resolve(pkg: griffe.Module, obj: griffe.Object, target: str) -> str:
    root = pkg.path
    for path in _candidates(obj, target):
        if path == root:
            return path
        if not path.startswith(root + "."):
            continue
        try:
            pkg[path[len(root) + 1 :]]
        except (KeyError, ValueError, AttributeError, griffe.AliasResolutionError):
            continue
        return path
    return target


def _rewrite(pkg: griffe.Module, obj: griffe.Object, text: str) -> str:
    def sub(match: re.Match) -> str:
        target = match["target"].strip()
        title = target.rsplit(".", 1)[-1] if match["tilde"] else target
        identifier = _resolve(pkg, obj, target)
        return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

    return _ROLE.sub(sub, text)


def _walk(pkg: griffe.Module, obj: griffe.Object, seen: set[str]) -> None:
    if obj.path in seen:
        return
    seen.add(obj.path)
    if obj.docstring is not None:
        obj.docstring.value = _rewrite(pkg, obj, obj.docstring.value)
    for member in obj.members.values():
        if member.is_alias:
            continue
        _walk(pkg, member, seen)


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` as optional autorefs once the whole package is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        _walk(pkg, pkg, set())
