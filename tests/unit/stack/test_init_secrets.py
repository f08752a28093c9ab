"""init/init_secrets.py: secrets generated once and kept, overridden by .env, never a default, shown on
demand."""

from __future__ import annotations

import importlib.util
import stat
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.env import ROOT


@pytest.fixture
def init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module, pointed at a temporary secrets root and overrides file."""
    monkeypatch.setenv("INIT_SECRETS_ROOT", str(tmp_path / "secrets"))
    monkeypatch.setenv("INIT_OVERRIDES", str(tmp_path / "overrides.env"))
    spec = importlib.util.spec_from_file_location("init_secrets", ROOT / "init" / "init_secrets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "init_secrets", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _read(tmp_path: Path, name: str) -> str:
    return (tmp_path / "secrets" / name).read_text(encoding="utf-8").strip()


def test_first_start_generates_long_random_secrets_readable_by_the_services(init: ModuleType, tmp_path: Path):
    """Nothing given: both secrets are generated (long, different), files read-only for everyone."""
    report = init.generate()
    token, password = _read(tmp_path, "relay/relay_token"), _read(tmp_path, "grafana/admin_password")
    assert len(token) >= 40 and len(password) >= 40 and token != password
    assert all("generated" in line for line in report)
    mode = stat.S_IMODE((tmp_path / "secrets" / "relay" / "relay_token").stat().st_mode)
    assert mode == 0o444
    # A second start keeps them (Alertmanager and the relay must keep agreeing; Grafana keeps its admin).
    assert all("kept" in line for line in init.generate())
    assert _read(tmp_path, "relay/relay_token") == token


def test_env_values_win_over_generated_ones_and_are_never_printed(init: ModuleType, tmp_path: Path, capsys):
    """RELAY_AUTH_TOKEN / GRAFANA_ADMIN_PASSWORD from .env replace generated values; the log says where
    each came from, never the value."""
    init.generate()
    (tmp_path / "overrides.env").write_text(
        "RELAY_AUTH_TOKEN=chosen-relay-token\nGRAFANA_ADMIN_PASSWORD=\n", encoding="utf-8")
    assert init.main([]) == 0
    out = capsys.readouterr().out
    assert _read(tmp_path, "relay/relay_token") == "chosen-relay-token"
    assert "from .env (RELAY_AUTH_TOKEN)" in out and "kept" in out
    assert "chosen-relay-token" not in out and "make secrets" in out
    assert _read(tmp_path, "grafana/admin_password") not in out


def test_show_prints_a_secret_on_demand(init: ModuleType, tmp_path: Path, capsys):
    """`show NAME` prints exactly that secret (what `make secrets` runs); unknown or missing ones fail."""
    assert init.main(["show", "relay_token"]) == 1  # nothing generated yet
    init.generate()
    capsys.readouterr()
    assert init.main(["show", "grafana_admin_password"]) == 0
    assert capsys.readouterr().out == _read(tmp_path, "grafana/admin_password") + "\n"
    assert init.main(["show", "nope"]) == 2


def test_runs_on_the_plain_python_image():
    """Standard library only: the init service uses python:3.11-slim-bookworm without installing."""
    source = (ROOT / "init" / "init_secrets.py").read_text(encoding="utf-8")
    modules = {line.split()[1].split(".")[0] for line in source.splitlines()
               if line.startswith(("import ", "from ")) and not line.startswith("from __future__")}
    assert modules and modules <= set(sys.stdlib_module_names), modules - set(sys.stdlib_module_names)
