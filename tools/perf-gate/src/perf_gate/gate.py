"""The modes end to end: `ab` (before merge), `record` (stored baseline), `live` (after deploy)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from perf_gate import EXIT_REGRESSION
from perf_gate.baseline import read_stored, resolve_auto, write_stored
from perf_gate.builds import (
    Build,
    BuildOptions,
    ProcessBuild,
    RefBuild,
    make_build,
    parse_source,
    service_tree,
)
from perf_gate.decision import (
    REGRESSION,
    UNCONFIRMED,
    Comparison,
    SloCheck,
    Summary,
    compare_all,
    slo_checks,
    summarize,
    undecided,
)
from perf_gate.errors import CouldNotMeasure
from perf_gate.live import Prometheus, check_live
from perf_gate.measure import device_of, measure, running
from perf_gate.profile import Profile, ProfileError, SloClass, load_profile
from perf_gate.report import GateResult
from perf_gate.workload import Call, build_plan

log = logging.getLogger(__name__)
AUTO_CLASSES = {"cuda": "gpu-large", "cpu": "cpu-tiny"}


@dataclass
class RunConfig:
    """What `ab` and `record` need besides the build sources."""

    options: BuildOptions
    profile: str = "default"
    rounds: int | None = None
    slo_class: str = "auto"  # a class name, "auto" (from the candidate's device) or "none"
    tiny_model: Path | None = None
    confirm: bool = False  # a failure must show again in a second run with fresh processes
    env: dict[str, dict[str, str]] = field(default_factory=dict)  # per role


def _profile(name: str) -> Profile:
    try:
        return load_profile(name)
    except ProfileError as exc:
        raise CouldNotMeasure(str(exc)) from exc


def _slo_class(profile: Profile, wanted: str, build: Build) -> tuple[str | None, SloClass | None]:
    if wanted == "none":
        return None, None
    name = wanted
    if wanted == "auto":
        device = device_of(build.url)
        name = AUTO_CLASSES.get(device or "", "")
        if not name:
            log.warning("no SLO class for device %r of the %s: SLO not checked", device, build.role)
            return None, None
    if name not in profile.slo_classes:
        raise CouldNotMeasure(f"SLO class {name!r} is not in profile {profile.name} "
                              f"(it has {', '.join(profile.slo_classes)})")
    return name, profile.slo_classes[name]


def ensure_tiny_model(config: RunConfig, candidate: str) -> None:
    """Builds the tiny model with the service's own command-line builder, unless it is there already."""
    assert config.tiny_model is not None
    env = dict(os.environ)
    kind, value = parse_source(candidate)
    if kind == "path":
        src = (Path(value) / config.options.service_src).resolve()
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([config.options.python, "-m", "ofa_ve.tiny_model", str(config.tiny_model)],
                          capture_output=True, text=True, env=env, check=False, timeout=900)
    if proc.returncode != 0:
        raise CouldNotMeasure(f"building the tiny model at {config.tiny_model} failed", proc.stderr[-3000:])


def _options(config: RunConfig, profile: Profile) -> BuildOptions:
    env = {**profile.service_env, **config.options.env}
    if config.tiny_model is not None:
        env = {**env, "OFA_VE_MODEL": str(config.tiny_model.resolve()), "OFA_VE_DEVICE": "cpu"}
    return replace(config.options, env=env)


def run_ab(config: RunConfig, baseline: str, candidate: str, baseline_file: Path | None) -> GateResult:
    """A/B: the candidate against a baseline build (or stored numbers), interleaved round by round."""
    started = time.monotonic()
    result = GateResult(mode="ab")
    try:
        profile = _profile(config.profile)
        result.profile = {"name": profile.name, "sha256": profile.sha256}
        result.alpha = profile.thresholds.alpha
        result.rounds = config.rounds or profile.rounds
        if baseline == "auto":
            baseline, why = resolve_auto(config.options.repo, baseline_file)
            result.baseline_rule = why
        stored = None
        if baseline.startswith("stored:"):
            stored = read_stored(Path(baseline.removeprefix("stored:")))
            if stored.profile_sha256 != profile.sha256:
                raise CouldNotMeasure(
                    f"{stored.path} was recorded with another version of profile {stored.profile_name}: "
                    "refresh it with `perf-gate record`")
            result.notes.append(
                f"baseline = numbers recorded {stored.recorded_at} from {stored.build.get('source')} "
                f"(commit {str(stored.commit)[:12]}, {stored.machine.get('cpus')} CPUs): not interleaved "
                "with the candidate, so machine noise and machine differences are not controlled")
        if config.tiny_model is not None:
            ensure_tiny_model(config, candidate)
        options = _options(config, profile)
        cand = make_build("candidate", candidate, options, config.env.get("candidate"))
        builds: list[Build] = [cand]
        if stored is None:
            builds.insert(0, make_build("baseline", baseline, options, config.env.get("baseline")))
        stored_row = [{"role": "baseline", "source": baseline, "detail": "stored numbers", "url": ""}]

        def describe() -> list[dict[str, str]]:
            return [*(stored_row if stored else []), *(b.describe() for b in builds)]

        result.builds = describe()
        plan = build_plan(profile)

        rounds = config.rounds or profile.rounds
        max_rounds = max(rounds, profile.max_rounds)
        base_fixed = stored.summary if stored else None

        def attempt() -> tuple[list[Comparison], list[SloCheck], dict[str, object]]:
            with running(builds, options.start_timeout_s):
                result.builds = describe()
                result.slo_class, slo = _slo_class(profile, config.slo_class, cand)
                base, cand_summary, comparisons = _until_decided(profile, plan, builds, rounds, max_rounds,
                                                                 base_fixed, result)
            summaries = {"baseline": base.to_json(), "candidate": cand_summary.to_json()}
            checks = slo_checks(slo, cand_summary.slo, base.slo) if slo is not None else []
            return comparisons, checks, summaries

        result.comparisons, result.slo, result.summaries = attempt()
        if config.confirm and result.exit_code == EXIT_REGRESSION:
            first = result.comparisons, result.slo
            log.info("first run failed on %s: confirming with fresh processes", ", ".join(_failures(result)))
            result.notes.append(f"first run failed on {', '.join(_failures(result))}; a second run with "
                                "fresh processes decides, and only what fails in both runs fails the gate")
            result.comparisons, result.slo, result.summaries = attempt()
            result.comparisons, result.slo = confirmed(first, (result.comparisons, result.slo))
    except CouldNotMeasure as exc:
        result.error = exc
    result.duration_s = time.monotonic() - started
    return result


def _until_decided(profile: Profile, plan: dict[str, list[Call]], builds: list[Build], rounds: int,
                   max_rounds: int, stored: Summary | None,
                   result: GateResult) -> tuple[Summary, Summary, list[Comparison]]:
    """Measures `rounds` rounds, then `extra_rounds` more at a time, up to `max_rounds`, while a metric
    is worse than its threshold but not yet significant (on a busy runner noise can leave a real
    slowdown open after 8 rounds). Returns the baseline and candidate summaries and the comparisons."""
    runs = asyncio.run(measure(profile, plan, builds, rounds))
    while True:
        candidate = summarize(profile, runs["candidate"])
        baseline = stored or summarize(profile, runs["baseline"])
        comparisons = compare_all(profile, baseline, candidate)
        done = len(runs["candidate"])
        result.rounds = done
        pending = undecided(comparisons)
        if not pending or done >= max_rounds or any(c.verdict == REGRESSION for c in comparisons):
            return baseline, candidate, comparisons
        more = min(profile.extra_rounds, max_rounds - done)
        log.info("after %d rounds %s: worse than the threshold, not significant; %d more rounds",
                 done, ", ".join(pending), more)
        result.notes.append(f"after {done} rounds {', '.join(pending)}: worse than the threshold, "
                            f"not significant; {more} more rounds")
        extra = asyncio.run(measure(profile, plan, builds, more, first_round=done))
        for role, measured in extra.items():
            runs[role] += measured


def _failures(result: GateResult) -> list[str]:
    return [c.key for c in result.regressions] + [f"SLO {c.name}" for c in result.slo_breaches]


def confirmed(first: tuple[list[Comparison], list[SloCheck]],
              second: tuple[list[Comparison], list[SloCheck]]) -> tuple[list[Comparison], list[SloCheck]]:
    """The second run's results, with a regression or SLO breach kept only where the first run had it too."""
    failed_first = {c.key for c in first[0] if c.verdict == REGRESSION}
    breached_first = {c.name for c in first[1] if c.passed is False}
    comparisons = [
        c if c.verdict != REGRESSION or c.key in failed_first else replace(c, verdict=UNCONFIRMED)
        for c in second[0]
    ]
    slo = [
        c if c.passed is not False or c.name in breached_first else replace(c, passed=None, note=UNCONFIRMED)
        for c in second[1]
    ]
    return comparisons, slo


def run_record(config: RunConfig, source: str, out: Path, commit: str | None) -> GateResult:
    """Measures one build with the profile and writes its numbers (and its commit) as the stored baseline."""
    started = time.monotonic()
    result = GateResult(mode="record")
    try:
        profile = _profile(config.profile)
        result.profile = {"name": profile.name, "sha256": profile.sha256}
        result.rounds = config.rounds or profile.rounds
        if config.tiny_model is not None:
            ensure_tiny_model(config, source)
        options = _options(config, profile)
        build = make_build("baseline", source, options, config.env.get("baseline"))
        if commit is None and isinstance(build, RefBuild):
            commit = build.commit
        elif commit is None and isinstance(build, ProcessBuild):
            commit = _head(options.repo)
            result.notes.append(f"recorded as commit {commit[:12]} (HEAD): the working tree must match it")
        tree = service_tree(options.repo, commit, options.service_src) if commit else None
        plan = build_plan(profile)
        with running([build], options.start_timeout_s):
            result.builds = [build.describe()]
            result.slo_class, slo = _slo_class(profile, config.slo_class, build)
            runs = asyncio.run(measure(profile, plan, [build], result.rounds))
        summary = summarize(profile, runs["baseline"])
        write_stored(out, profile, summary, build.describe(), commit, tree)
        result.summaries = {"baseline": summary.to_json()}
        result.notes.append(f"written {out}")
        if slo is not None:
            result.slo = slo_checks(slo, summary.slo)
    except CouldNotMeasure as exc:
        result.error = exc
    result.duration_s = time.monotonic() - started
    return result


def _head(repo: Path) -> str:
    proc = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise CouldNotMeasure(f"{repo} is not a git checkout: pass --commit")
    return proc.stdout.strip()


def run_live(profile_name: str, slo_class: str, url: str, selector: str, window: str, at: float | None,
             token: str | None, client: httpx.Client | None = None) -> GateResult:
    """Live: the class's limits against the recording rules over the window."""
    started = time.monotonic()
    result = GateResult(mode="live", slo_class=slo_class)
    owned = client is None
    client = client or httpx.Client()
    try:
        profile = _profile(profile_name)
        result.profile = {"name": profile.name, "sha256": profile.sha256}
        if slo_class not in profile.slo_classes:
            raise CouldNotMeasure(f"SLO class {slo_class!r} is not in profile {profile.name} "
                                  f"(it has {', '.join(profile.slo_classes)})")
        when = time.time() if at is None else at
        stamp = dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="seconds")
        result.live = {"url": url, "selector": selector, "window": window, "at": stamp}
        prom = Prometheus(url, client, token)
        live = check_live(prom, profile.slo_classes[slo_class], selector, window, when)
        result.live.update(at=live.at, values=live.values, queries=live.queries)
        result.slo = live.checks
        result.notes.append(f"{live.values['requests'] or 0:.0f} requests in the window, "
                            f"{live.values['throughput_rps'] or 0:.2f} req/s")
    except CouldNotMeasure as exc:
        result.error = exc
    finally:
        if owned:
            client.close()
    result.duration_s = time.monotonic() - started
    return result
