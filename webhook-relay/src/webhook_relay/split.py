"""Fit a rendered message into a channel's byte limit.

Cuts at alert boundaries first, then at line boundaries, and only inside a line when one line alone
is too long, never inside a UTF-8 character. Parts are numbered `(i/n)` and every part, numbering
and mention line included, is within the limit.
"""

from __future__ import annotations

# The template writes this between alerts; it never appears in a sent message.
ALERT_BOUNDARY = "\x1e"
_MAX_PARTS = 999
_NUMBERING_RESERVE = len("(999/999)\n\n") + 1  # +1: each part ends with a newline


class SplitError(ValueError):
    """The limit leaves no room for any content."""


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut_utf8(text: str, budget: int) -> list[str]:
    """Pieces of at most `budget` bytes, cut only between characters."""
    pieces: list[str] = []
    data = text.encode("utf-8")
    while data:
        # Dropping the incomplete tail character keeps the cut on a character boundary.
        piece = data[:budget].decode("utf-8", errors="ignore")
        pieces.append(piece)
        data = data[len(piece.encode("utf-8")) :]
    return pieces


def _pieces(chunk: str, budget: int) -> list[str]:
    if _nbytes(chunk) <= budget:
        return [chunk]
    out: list[str] = []
    for line in chunk.splitlines(keepends=True):
        out.extend([line] if _nbytes(line) <= budget else _cut_utf8(line, budget))
    return out


def split_text(text: str, limit: int, first_suffix: str = "") -> list[str]:
    """Split `text` (alerts separated by ALERT_BOUNDARY) into parts of at most `limit` bytes.

    `first_suffix` (the mention line) is appended to the first part only, so people are notified once.
    """
    suffix_bytes = _nbytes(first_suffix)
    whole = text.replace(ALERT_BOUNDARY, "")
    if _nbytes(whole) + suffix_bytes <= limit:
        return [whole + first_suffix]
    budget = limit - _NUMBERING_RESERVE - suffix_bytes
    if budget < 16:
        raise SplitError(f"limit of {limit} bytes leaves no room for content")
    parts: list[str] = []
    current = ""
    for chunk in text.split(ALERT_BOUNDARY):
        for piece in _pieces(chunk, budget):
            if current and _nbytes(current) + _nbytes(piece) > budget:
                parts.append(current)
                current = ""
            current += piece
    if current:
        parts.append(current)
    total = len(parts)
    if total > _MAX_PARTS:
        raise SplitError(f"message needs {total} parts, more than {_MAX_PARTS}")
    numbered = [f"({i}/{total})\n\n{part.strip(chr(10))}\n" for i, part in enumerate(parts, start=1)]
    numbered[0] += first_suffix
    return numbered
