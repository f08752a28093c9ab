"""The committed baseline file and the rule that picks the baseline when CI says `--baseline auto`.

Nothing records which commit last passed CI (CI runs on a fresh clone and writes nothing back), so
the rule is explicit, in this order:

1. `PERF_GATE_BASELINE_REF` when set: pipelines that know the target branch's commit (a merge
   request's base, the push's `before`) pass it, and that commit is the last one that passed.
2. The `commit` recorded in the baseline file, when the clone has it: a commit that passed, chosen
   on purpose by whoever last ran `perf-gate record`; else the service source's tree id recorded
   with it, which a squash or rebase merge keeps although it gives the commit a new id. Either is
   run again, live and interleaved with the candidate: only its code is taken from the past, never
   its numbers.
3. The numbers recorded in the baseline file, when the commit is not there (a shallow clone):
   weaker, because they were measured at another time, maybe on another machine; the report says so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perf_gate.decision import StepTotals, Summary
from perf_gate.errors import CouldNotMeasure
from perf_gate.profile import Profile

FORMAT = 1
ENV_REF = "PERF_GATE_BASELINE_REF"


@dataclass(frozen=True)
class Stored:
    path: Path
    commit: str | None
    service_tree: str | None
    recorded_at: str
    profile_name: str
    profile_sha256: str
    machine: dict[str, Any]
    build: dict[str, Any]
    summary: Summary


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "machine": platform.machine(),
            "python": platform.python_version()}


def write_stored(path: Path, profile: Profile, summary: Summary, build: dict[str, str],
                 commit: str | None, service_tree: str | None = None) -> None:
    data = {
        "format": FORMAT,
        "commit": commit,
        "service_tree": service_tree,
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "profile": {"name": profile.name, "sha256": profile.sha256},
        "machine": machine(),
        "build": build,
        **summary.to_json(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def read_stored(path: Path) -> Stored:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CouldNotMeasure(f"baseline file {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CouldNotMeasure(f"baseline file {path}: not a perf-gate baseline of format {FORMAT}")
    try:
        steps = {name: StepTotals(**{k: v for k, v in totals.items() if k != "statuses"})
                 for name, totals in data["steps"].items()}
        summary = Summary(series=data["series"], slo=data["slo"], steps=steps)
        return Stored(path, data.get("commit"), data.get("service_tree"), data["recorded_at"],
                      data["profile"]["name"],
                      data["profile"]["sha256"], data["machine"], data["build"], summary)
    except (KeyError, TypeError) as exc:
        raise CouldNotMeasure(f"baseline file {path}: missing or malformed {exc}") from exc


def object_exists(repo: Path, name: str, kind: str) -> bool:
    """True when `repo` has the `kind` (commit, tree) object `name`."""
    proc = subprocess.run(["git", "-C", str(repo), "cat-file", "-e", f"{name}^{{{kind}}}"],
                          capture_output=True, check=False)
    return proc.returncode == 0


def resolve_auto(repo: Path, baseline_file: Path | None,
                 environ: dict[str, str] | None = None) -> tuple[str, str]:
    """The baseline `--baseline auto` stands for, as ("ref:<commit>" | "stored:<file>", why)."""
    environ = dict(os.environ) if environ is None else environ
    ref = environ.get(ENV_REF, "").strip()
    if ref:
        return f"ref:{ref}", f"{ENV_REF} is set"
    if baseline_file is None or not baseline_file.is_file():
        raise CouldNotMeasure(f"no baseline: {ENV_REF} is not set and there is no baseline file "
                              f"({baseline_file}); run `perf-gate record` or pass --baseline")
    stored = read_stored(baseline_file)
    if stored.commit and object_exists(repo, stored.commit, "commit"):
        return f"ref:{stored.commit}", f"the commit recorded in {baseline_file}"
    if stored.service_tree and object_exists(repo, stored.service_tree, "tree"):
        return (f"tree:{stored.service_tree}",
                f"the service tree recorded in {baseline_file} (its commit {str(stored.commit)[:12]} is not "
                "in this clone)")
    why = (f"neither commit {stored.commit[:12]} nor the service tree of {baseline_file} is in this clone"
           if stored.commit else f"{baseline_file} records no commit")
    return f"stored:{baseline_file}", f"{why}: comparing against its recorded numbers"
