"""Paths and shared values of the monitoring bundle (prometheus/, alertmanager/, grafana/)."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

from tests.support.env import ROOT

PROMETHEUS_DIR = ROOT / "prometheus"
ALERTMANAGER_CONFIG = ROOT / "alertmanager" / "alertmanager.yml"
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
RUNBOOK = ROOT / "runbook.md"
GENERATOR = ROOT / "scripts" / "gen_dashboards.py"
RELAY_TOKEN_FILE = "/etc/alertmanager/secrets/relay_token"
COMPOSE_FILE = ROOT / "docker-compose.yml"


def links() -> ModuleType:
    """scripts/dashgen/links.py, the one place the Grafana and runbook URLs are defined."""
    spec = importlib.util.spec_from_file_location("dashgen_links", ROOT / "scripts" / "dashgen" / "links.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboards() -> dict[str, dict[str, Any]]:
    """The committed dashboards by file name."""
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARD_DIR.glob("*.json"))}


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a markdown heading."""
    kept = "".join(c for c in heading.strip().lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def runbook_sections() -> list[tuple[str, str]]:
    """(heading, body) of each second-level section of the runbook, in order (duplicates kept)."""
    sections: list[tuple[str, list[str]]] = []
    for line in RUNBOOK.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif sections:
            sections[-1][1].append(line)
    return [(heading, "\n".join(body)) for heading, body in sections]


def runbook_anchors() -> set[str]:
    """Anchors of the runbook's second-level sections."""
    return {github_anchor(heading) for heading, _ in runbook_sections()}
