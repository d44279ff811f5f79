"""A griffe extension for the docs site: the Sphinx roles livemesh's docstrings use become links.

livemesh's docstrings cite other objects the way ``help()`` readers and Sphinx know,
``:class:`~livemesh.errors.QuotaError```, ``:meth:`close```. mkdocstrings renders docstrings as
Markdown, where such a role would print as is; this turns each into an *optional* cross-reference:
a link when the target is rendered somewhere on the site, plain code otherwise (a module or a
private helper the reference does not render). References written in Markdown on the pages,
``[Pool][livemesh.Pool]``, stay strict: ``mkdocs build --strict`` fails on one that does not resolve.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const):`(?P<body>[^`]+)`")
EXPLICIT = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^>]+)>$")


def _identifier(target: str, scope: griffe.Object) -> str:
    """The full path ``target`` names as seen from ``scope`` (innermost scope first)."""
    head = target.split(".", 1)[0]
    place: griffe.Object | None = scope
    while place is not None:
        member = place.members.get(head) if hasattr(place, "members") else None
        if member is not None:
            base = member.target_path if member.is_alias else member.path
            return base + target[len(head) :]
        place = place.parent
    return target


def _link(match: re.Match[str], scope: griffe.Object) -> str:
    body = match["body"].strip()
    explicit = EXPLICIT.match(body)
    if explicit:
        title, target = explicit["title"], explicit["target"]
    else:
        target = body.lstrip("~")
        title = target.rsplit(".", 1)[-1] if body.startswith("~") else target
    target = target.lstrip(".")
    identifier = _identifier(target, scope)
    code = f"<code>{html.escape(title)}</code>"
    return f'<autoref identifier="{html.escape(identifier)}" optional>{code}</autoref>'


def _rewrite(obj: griffe.Object) -> None:
    if obj.docstring is not None:
        scope = obj if obj.is_class or obj.is_module else (obj.parent or obj)
        obj.docstring.value = ROLE.sub(lambda m: _link(m, scope), obj.docstring.value)
    for member in obj.members.values():
        if not member.is_alias:
            _rewrite(member)  # type: ignore[arg-type]


class RstRoles(griffe.Extension):
    """Rewrite every docstring of the package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        _rewrite(pkg)
