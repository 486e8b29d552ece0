"""A griffe extension for the docs build: reST markup in docstrings becomes Markdown.

vendorkit's docstrings are reST-flavoured (``:class:`Token```, a literal block after
``::``), read in editors and by ``help()``; mkdocstrings renders Markdown, where both would
show as text. ``:class:`~a.b.C``` becomes ```C```, ``:class:`a.b.C``` becomes
```a.b.C```; a paragraph ending ``::`` ends ``:`` and a lone ``::`` line goes, leaving the
indented block after it a code block, in Markdown as in reST.

Attributes are documented the Sphinx way, by ``#:`` comments above them (constants, attrs
fields): those comments become the attribute's docstring.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")
_LONE_MARK = re.compile(r"(?m)^[ \t]*::[ \t]*\n")
_TRAILING_MARK = re.compile(r"(?m)(?<=\S)::[ \t]*$")


def _code_span(match: re.Match[str]) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


def markdown(docstring: str) -> str:
    """The docstring with its roles and literal-block marks in Markdown."""
    text = _ROLE.sub(_code_span, docstring)
    return _TRAILING_MARK.sub(":", _LONE_MARK.sub("", text))


def comment_above(attr: griffe.Attribute) -> str | None:
    """The ``#:`` comment lines right above ``attr``, joined; None if there are none."""
    lines = attr.module.lines
    start = attr.lineno - 1 if attr.lineno else 0
    comment: list[str] = []
    for line in reversed(lines[:start]):
        stripped = line.strip()
        if not stripped.startswith("#:"):
            break
        comment.insert(0, stripped[2:].strip())
    return "\n".join(comment) or None


class ReSTRoles(griffe.Extension):
    """Rewrites every docstring once, as griffe loads its object."""

    def on_attribute_instance(self, *, attr: griffe.Attribute, **kwargs: Any) -> None:
        if attr.docstring is None and (comment := comment_above(attr)) is not None:
            attr.docstring = griffe.Docstring(comment, parent=attr)

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
