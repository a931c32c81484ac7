"""MkDocs hooks for the docs site (``mkdocs.yml`` ``hooks:``).

The docstrings are reST (``:class:`Foo```, ``:meth:`~pkg.Foo.bar```); mkdocstrings renders their descriptions
as Markdown, which leaves the role name in front of the code (":class:Foo").  This hook shows them as Sphinx
does: the code alone, only its last component when the target starts with ``~``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["on_page_content", "strip_rest_roles"]

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|exc|mod|obj|const|ref):<code>(~?)([^<]*)</code>")


def strip_rest_roles(html: str) -> str:
    """Drop the reST role before inline code: ``:class:<code>~a.B</code>`` -> ``<code>B</code>``."""

    def repl(m: re.Match[str]) -> str:
        target = m.group(2)
        return f"<code>{target.rsplit('.', 1)[-1] if m.group(1) else target}</code>"

    return _ROLE.sub(repl, html)


def on_page_content(html: str, **_: Any) -> str:
    """MkDocs event: the page's HTML, after Markdown (and mkdocstrings) rendering."""
    return strip_rest_roles(html)
