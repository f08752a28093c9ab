"""Settings from the environment and the command line's answers to bad input."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
from metrics_snapshot.__main__ import main
from metrics_snapshot.settings import Settings
from pydantic import ValidationError


def test_defaults_suit_the_compose_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """VictoriaMetrics in the compose network, /snapshots, 03:00, 90 days, TZ read from the usual variable."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    settings = Settings()
    assert settings.url == "http://victoriametrics:8428" and settings.dir == Path("/snapshots")
    assert settings.at_time == time(3, 0) and settings.keep_days == 90
    assert settings.timezone == "Asia/Shanghai"
    assert settings.backup_destination == "fs:///snapshots/vmbackup"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SNAPSHOT_AT", "3am", "HH:MM"),
        ("SNAPSHOT_AT", "24:00", "HH:MM"),
        ("TZ", "Mars/Olympus", "unknown time zone"),
        ("SNAPSHOT_SELECTOR", "env=prod", "label matchers"),
        ("SNAPSHOT_KEEP_DAYS", "0", "greater than or equal to 1"),
        ("SNAPSHOT_LISTEN", "9109", "HOST:PORT"),
    ],
)
def test_bad_values_are_refused_naming_the_problem(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    """Each bad setting fails at start-up with a message that says what is wrong."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_the_command_exits_78_on_bad_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad setting is reported on stderr with exit status 78 (configuration error) before anything runs."""
    monkeypatch.setenv("SNAPSHOT_AT", "noon")
    assert main(["run"]) == 78
    assert "SNAPSHOT_AT must be HH:MM" in capsys.readouterr().err


def test_compare_refuses_a_bad_side_with_status_64(monkeypatch: pytest.MonkeyPatch) -> None:
    """A side that does not parse is a usage error (64), no query is sent."""
    monkeypatch.setenv("SNAPSHOT_URL", "http://127.0.0.1:9")
    assert main(["compare", "--a", "colour=red", "--b", "revision=v2"]) == 64


def test_restore_refuses_while_victoriametrics_answers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """restore runs vmrestore only when nothing answers at SNAPSHOT_URL; an unreachable one lets it try."""
    monkeypatch.setenv("SNAPSHOT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SNAPSHOT_VMRESTORE", str(tmp_path / "no-such-vmrestore"))
    monkeypatch.setenv("SNAPSHOT_VM_DATA_PATH", str(tmp_path / "data"))
    assert main(["restore", "--src", f"fs://{tmp_path}/backup"]) == 1  # tried, and vmrestore is missing
    monkeypatch.setattr("metrics_snapshot.__main__.vm_is_up", lambda url: True)
    called = []
    monkeypatch.setattr("metrics_snapshot.__main__.run_vmrestore", lambda *a: called.append(a))
    assert main(["restore"]) == 1 and called == []
