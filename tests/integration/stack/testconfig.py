"""Test copies of the stack's Prometheus and Alertmanager configs, with intervals short enough for one
test run. Only timing changes: scrape jobs, rules, alert expressions, routes and receivers stay the
ones operators deploy, so the end-to-end tests exercise the real files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

SCRAPE_INTERVAL = "2s"
DNS_REFRESH_INTERVAL = "5s"
ALERT_FOR = "10s"
GROUP_WAIT = "1s"
GROUP_INTERVAL = "5s"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _dump(path: Path, data: Any) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def write_prometheus_config(src: Path, dest: Path) -> None:
    """Copy the prometheus/ folder to dest with fast scrapes, evaluations and `for:` durations."""
    shutil.copytree(src, dest)
    config = _load(dest / "prometheus.yml")
    config.setdefault("global", {}).update(
        scrape_interval=SCRAPE_INTERVAL, scrape_timeout=SCRAPE_INTERVAL, evaluation_interval=SCRAPE_INTERVAL
    )
    for job in config.get("scrape_configs", []):
        # Per-job overrides would undo the global speed-up (and a timeout above the interval is invalid).
        job.pop("scrape_interval", None)
        job.pop("scrape_timeout", None)
        for sd in job.get("dns_sd_configs", []):
            sd["refresh_interval"] = DNS_REFRESH_INTERVAL
    _dump(dest / "prometheus.yml", config)
    for path in dest.rglob("*.y*ml"):
        rules = _load(path)
        if not isinstance(rules, dict) or "groups" not in rules:
            continue
        for group in rules["groups"]:
            group.pop("interval", None)
            for rule in group.get("rules", []):
                if "for" in rule:
                    rule["for"] = ALERT_FOR
        _dump(path, rules)


def _shorten_route(route: dict[str, Any]) -> None:
    for key, value in (("group_wait", GROUP_WAIT), ("group_interval", GROUP_INTERVAL)):
        if key in route:
            route[key] = value
    for child in route.get("routes", []):
        _shorten_route(child)


def write_alertmanager_config(src: Path, dest: Path) -> None:
    """Write alertmanager.yml with every route's group_wait / group_interval shortened."""
    config = _load(src)
    config["route"].update(group_wait=GROUP_WAIT, group_interval=GROUP_INTERVAL)
    _shorten_route(config["route"])
    _dump(dest, config)
