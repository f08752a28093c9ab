"""Error texts fit to leave the replica: no secrets, no text a caller sent.

Used by the recent-errors view (GET /v1/errors), which the alert relay quotes in chat messages and may
pass to a language model. A client error's message can echo the caller's input (a content type, an
encoding error quoting the sentence), so only its code is kept; a server error's message is the
service's own words, with anything that could still carry a value masked: quoted strings, URLs,
`key=value` pairs of secret-looking keys and long opaque tokens.
"""

from __future__ import annotations

import re

MAX_MESSAGE_CHARS = 160
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_SECRET_PAIR = re.compile(
    r"\b(\w*(?:token|secret|password|passwd|key|sign|auth)\w*)\s*[=:]\s*\S+", re.IGNORECASE
)
_TOKEN = re.compile(r"[A-Za-z0-9+/_=-]{24,}")


def redact_message(text: str | None) -> str | None:
    """`text` with quoted strings, URLs, secret pairs and long tokens masked, cut to 160 characters."""
    if not text:
        return text
    text = _QUOTED.sub("'…'", text)
    text = _URL.sub("<url>", text)
    text = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}=<secret>", text)
    text = _TOKEN.sub("<redacted>", text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
