"""Keep credentials out of logs, error bodies and reprs: URLs are shown with their secrets masked."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "<secret>"
_SECRET_PARAMS = frozenset({"access_token", "key", "sign", "token", "timestamp"})
# Feishu puts its token in the path; so does any hook URL ending in a long opaque segment.
_OPAQUE_SEGMENT = re.compile(r"/hook/[^/?#]+")


def mask_url(url: str) -> str:
    """The URL with query secrets and hook tokens replaced by `<secret>`, userinfo dropped."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    query = urlencode(
        [
            (k, MASK if k.lower() in _SECRET_PARAMS else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="<>",
    )
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    path = _OPAQUE_SEGMENT.sub(f"/hook/{MASK}", parts.path)
    return urlunsplit((parts.scheme, netloc, path, query, ""))


_URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>]+")


def scrub(text: str, secrets: list[str]) -> str:
    """`text` with URLs masked and every occurrence of each non-empty secret replaced by `<secret>`."""
    text = _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
