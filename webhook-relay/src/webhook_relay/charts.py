"""Signed, expiring links to the chart PNGs the relay keeps (`GET /charts/{id}.png?exp=&sig=`).

DingTalk shows `![](url)` by fetching the URL from its own servers, so the link must work without a
login. It is signed instead: HMAC-SHA256 over the chart id and the expiry, with a key derived from the
relay's bearer token (never the token itself; a new token invalidates old links). A relay without a
token signs with a key drawn at start-up, so its links end with the process.

No absolute link is made under a loopback base (`http://localhost:8080`, the stack's default): the
chat's servers could never fetch it, and a broken image is worse than none.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from urllib.parse import urlencode, urlsplit

_CONTEXT = b"webhook-relay chart links v1"


def reachable_base(url: str | None) -> str | None:
    """`url` without its trailing slash, or None when it is empty or names this machine (loopback)."""
    if not url:
        return None
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return url.rstrip("/")


class ChartLinks:
    """Builds and checks chart URLs."""

    def __init__(self, token: bytes | None, public_url: str | None = None) -> None:
        secret = token if token else secrets.token_bytes(32)
        self._key = hmac.new(secret, _CONTEXT, hashlib.sha256).digest()
        self.public_url = reachable_base(public_url)

    def signature(self, chart_id: str, expires: int) -> str:
        return hmac.new(self._key, f"{chart_id}.{expires}".encode(), hashlib.sha256).hexdigest()

    def path(self, chart_id: str, expires: float) -> str:
        """The signed path, relative to the relay (the inbox page is served by the relay itself)."""
        exp = int(expires)
        return f"/charts/{chart_id}.png?{urlencode({'exp': exp, 'sig': self.signature(chart_id, exp)})}"

    def url(self, chart_id: str, expires: float) -> str | None:
        """The absolute signed URL under the public base; None without one (then no link at all)."""
        if self.public_url is None:
            return None
        return self.public_url + self.path(chart_id, expires)

    def valid(self, chart_id: str, exp: str, sig: str, now: float) -> bool:
        """True for an unexpired link this relay signed (compared in constant time)."""
        if not exp.isdigit() or int(exp) <= now:
            return False
        return hmac.compare_digest(self.signature(chart_id, int(exp)), sig)
