"""Splitting long messages: alert then line boundaries, UTF-8 safe, numbered, all within the limit."""

from __future__ import annotations

import pytest
from webhook_relay.split import ALERT_BOUNDARY, SplitError, split_text


def nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def test_short_text_is_one_part_with_suffix_and_no_numbering():
    """A message within the limit is sent whole, boundary markers removed, mention line appended."""
    parts = split_text(f"header\n{ALERT_BOUNDARY}\nalert one\n", 200, "\n\n@138")
    assert parts == ["header\n\nalert one\n\n\n@138"]


@pytest.mark.parametrize("limit", [300, 1000, 4096])
def test_every_part_within_limit_and_numbered(limit):
    """Many alerts split into numbered (i/n) parts, each within the byte limit."""
    alerts = [f"#### Alert {i}\n- **摘要**：磁盘使用率超过百分之九十 {i}\n" for i in range(60)]
    text = "### 告警\n" + "".join(ALERT_BOUNDARY + a for a in alerts)
    parts = split_text(text, limit, "\n\n@13800000000")
    assert len(parts) > 1
    for i, part in enumerate(parts, start=1):
        assert nbytes(part) <= limit
        assert part.startswith(f"({i}/{len(parts)})\n\n")
    assert parts[0].endswith("@13800000000")
    assert sum("@13800000000" in p for p in parts) == 1


def test_cuts_at_alert_boundaries_when_possible():
    """No alert is cut in two when each alert fits in a part."""
    alerts = [f"alert-{i} " + "x" * 80 + "\n" for i in range(10)]
    parts = split_text("".join(ALERT_BOUNDARY + a for a in alerts), 300)
    for a in alerts:
        assert sum(a.strip() in p for p in parts) == 1


def test_one_huge_multibyte_alert_is_cut_between_characters():
    """A single line far over the limit is cut into valid UTF-8 pieces, losing no character."""
    line = "告警😀" * 3000
    parts = split_text(ALERT_BOUNDARY + line, 1000)
    assert all(nbytes(p) <= 1000 for p in parts)
    body = "".join(p.split("\n\n", 1)[1].rstrip("\n") for p in parts)
    assert body == line


def test_line_boundaries_preferred_inside_a_long_alert():
    """An alert larger than the limit is cut between lines, keeping each short line whole."""
    lines = [f"- label{i}: {'值' * 20}\n" for i in range(100)]
    parts = split_text(ALERT_BOUNDARY + "".join(lines), 500)
    for line in lines:
        assert sum(line.strip() in p for p in parts) == 1


def test_limit_too_small_for_the_mention_line_fails():
    """A limit that leaves no room for content is an error, not an oversize part."""
    with pytest.raises(SplitError):
        split_text(ALERT_BOUNDARY + "x" * 100, 30, "\n\n" + "@1" * 20)
