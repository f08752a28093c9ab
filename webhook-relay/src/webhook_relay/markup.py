"""Chat markdown as safe HTML, for the inbox page and the HTML part of an email.

Raw HTML in a message is escaped (alert labels and descriptions are not trusted), except the one tag
the robots understand, `<font color="...">`, which becomes a coloured span when its colour is one the
relay itself writes (WeCom's names or a hex value).
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

# WeCom's named colours, as WeCom shows them.
NAMED_COLORS = {"info": "#188038", "comment": "#80868b", "warning": "#e37400"}
_FONT = re.compile(
    r"&lt;font color=&quot;(#[0-9A-Fa-f]{3,8}|info|comment|warning)&quot;&gt;(.*?)&lt;/font&gt;"
)
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).enable("table")


def _span(match: re.Match[str]) -> str:
    color = NAMED_COLORS.get(match.group(1), match.group(1))
    return f'<span style="color:{color}">{match.group(2)}</span>'


def markdown_html(text: str) -> str:
    """`text` rendered as HTML: every tag escaped but the robots' font colours."""
    return _FONT.sub(_span, _MARKDOWN.render(text))


def plain_text(text: str) -> str:
    """`text` without the robots' font tags (the plain-text part of an email)."""
    return re.sub(r'<font color="[^"<>]*">(.*?)</font>', r"\1", text)
