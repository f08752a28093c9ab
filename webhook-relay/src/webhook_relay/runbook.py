"""runbook.md served as one HTML page, with the heading anchors GitHub would give them.

Every alert's `runbook_url` is `/runbook#<anchor>`, resolved against the relay's public URL, so a
phone reading the chat lands on the right section of this deployment's runbook, not on a forge
that may not be reachable (or may not exist).
"""

from __future__ import annotations

import html
from pathlib import Path

from markdown_it import MarkdownIt

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 52rem; margin: 0 auto; padding: 1rem; }}
code, pre {{ background: #f4f4f4; border-radius: 3px; }} pre {{ padding: .6rem; overflow-x: auto; }}
h2 {{ border-top: 1px solid #ddd; padding-top: 1rem; }} :target {{ background: #fff6d5; }}
</style></head>
<body>
{body}
</body></html>
"""


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    kept = "".join(c for c in heading.strip().lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def render_runbook(text: str) -> tuple[str, set[str]]:
    """The HTML page and the set of anchors it defines (duplicates get -1, -2 as on GitHub)."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    title = "Runbook"
    for i, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        content = tokens[i + 1].content
        if token.tag == "h1":
            title = content
        anchor = github_anchor(content)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchor = f"{anchor}-{count}" if count else anchor
        token.attrSet("id", anchor)
        anchors.add(anchor)
    body = md.renderer.render(tokens, md.options, {})
    return _PAGE.format(title=html.escape(title), body=body), anchors


class Runbook:
    """The rendered page, re-rendered when the file changes (it is mounted from the host)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._page = ""
        self.anchors: set[str] = set()

    def page(self) -> str:
        """Raises OSError when the file cannot be read."""
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._page, self.anchors = render_runbook(self.path.read_text(encoding="utf-8"))
            self._stamp = stamp
        return self._page


