"""The enricher: a background task between the outbox and rendering.

It picks up notifications stored with a hold (webhook_relay.hold), gathers their evidence (live numbers
and diagnosis, recent errors, the chart) within the message deadline, and stores it in the transaction
that releases their deliveries. What is not ready by then is left out, with a line saying so; a
notification whose hold ran out is sent as it is by the sender, which never waits for this task. An
analysis that comes later, within its own deadline, becomes a follow-up notification in the outbox,
created once (see Outbox.add_follow_up). After a restart, pending work is resumed with the time that
is left, or settled as expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

import httpx

from webhook_relay.alertmanager import Alert, Notification
from webhook_relay.config import RelayConfig
from webhook_relay.enrichment import live
from webhook_relay.enrichment.analysis import AnalysisFailed, Analyst, build_prompt, cache_key
from webhook_relay.enrichment.chart import render_chart
from webhook_relay.enrichment.errors import ErrorsUnavailable, recent_errors
from webhook_relay.enrichment.metrics import EnrichmentMetrics
from webhook_relay.enrichment.prometheus import Curve, Prometheus, PrometheusError
from webhook_relay.enrichment.table import CHART, Series
from webhook_relay.evidence import (
    FOLLOW_UP_KEY,
    AnalysisResult,
    ChartRef,
    ErrorRecord,
    Evidence,
    Finding,
    FollowUp,
    InstanceEvidence,
    Line,
)
from webhook_relay.outbox import EnrichmentJob, Outbox, StorageError, StoredChart

log = logging.getLogger(__name__)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Enricher:
    """Gathers evidence for held notifications; `run` is a supervised background task."""

    def __init__(
        self,
        config: RelayConfig,
        outbox: Outbox,
        wake_sender: Callable[[list[str] | None], None],
        client: httpx.AsyncClient,
        metrics: EnrichmentMetrics,
        clock: Callable[[], float] = time.time,
        poll_seconds: float = 1.0,
    ) -> None:
        self.config = config
        self.cfg = config.enrichment
        self.outbox = outbox
        self.wake_sender = wake_sender
        self.client = client
        self.metrics = metrics
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.prometheus = Prometheus(self.cfg.prometheus_url, client) if self.cfg.prometheus_url else None
        analysis = self.cfg.analysis
        self.analyst = Analyst(analysis, client, metrics, clock) if analysis.configured else None
        self._wake = asyncio.Event()
        self._jobs: dict[int, asyncio.Task[None]] = {}

    def wake(self) -> None:
        """A held notification was stored: look at the outbox now."""
        self._wake.set()

    @property
    def margin(self) -> float:
        """Evidence must be stored this long before the hold ends (the commit takes a few ms)."""
        return min(0.25, self.cfg.deadline_seconds * 0.1)

    async def run(self) -> None:
        try:
            while True:
                try:
                    jobs = await asyncio.to_thread(self.outbox.enrichment_jobs, 100)
                except StorageError:
                    log.warning("could not read the enrichment jobs; retrying", exc_info=True)
                    jobs = []
                self._jobs = {k: t for k, t in self._jobs.items() if not t.done()}
                for job in jobs:
                    if job.notification_id not in self._jobs:
                        self._jobs[job.notification_id] = asyncio.create_task(
                            self._job(job), name=f"enrich-{job.notification_id}")
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        finally:
            for task in self._jobs.values():
                task.cancel()
            await asyncio.gather(*self._jobs.values(), return_exceptions=True)

    def parts(self, route: str) -> frozenset[str]:
        """Every part some target of `route` shows."""
        targets = self.config.routes[route].targets if route in self.config.routes else []
        found: set[str] = set()
        for target in targets:
            found |= self.config.evidence_parts(route, target)
        return frozenset(found)

    def _matching(self, note: Notification) -> list[Alert]:
        return [a for a in note.alerts if a.status == "firing"
                and all(a.labels.get(k) == v for k, v in self.cfg.match.items())]

    async def _job(self, job: EnrichmentJob) -> None:
        try:
            await self._work(job)
        except asyncio.CancelledError:
            raise
        except StorageError:
            log.warning("enrichment could not reach the outbox; retried at the next poll",
                        extra={"notification_id": job.notification_id}, exc_info=True)
            await asyncio.sleep(self.poll_seconds)
        except Exception:
            log.exception("enrichment failed; the alert goes without evidence",
                          extra={"notification_id": job.notification_id})
            now = self.clock()
            with contextlib.suppress(StorageError):
                await asyncio.to_thread(self.outbox.expire_evidence, job.notification_id, now)
                await asyncio.to_thread(self.outbox.settle_analysis, job.notification_id, "failed", now)

    async def _work(self, job: EnrichmentJob) -> None:
        nid = job.notification_id
        note = Notification.model_validate_json(job.payload)
        parts = self.parts(job.route)
        analysis_open = job.analysis == "pending"
        analysis_deadline = job.received_at + self.cfg.analysis.deadline_seconds
        evidence: Evidence | None = None
        png: bytes | None = None
        analysis: asyncio.Task[AnalysisResult] | None = None
        if job.state == "pending":
            store_by = job.hold_until - self.margin
            now = self.clock()
            if now >= store_by:
                await asyncio.to_thread(self.outbox.expire_evidence, nid, now)
                self.metrics.evidence.labels(result="late").inc()
                log.warning("evidence not gathered before the message deadline",
                            extra={"notification_id": nid})
            else:
                evidence, chart = await self.gather(note, parts, store_by - now)
                png = chart.png if chart is not None else None
                settled: str | None = None
                if analysis_open and self.analyst is not None and "analysis" in parts:
                    analysis = asyncio.create_task(self._analyse(note, evidence, png, analysis_deadline))
                    await asyncio.wait({analysis}, timeout=max(0.0, store_by - self.clock()))
                    if analysis.done():
                        try:
                            evidence = evidence.model_copy(update={"analysis": analysis.result()})
                            settled = "included"
                        except AnalysisFailed as exc:
                            problem = f"analysis: {exc.reason}" + (f" ({exc.detail})" if exc.detail else "")
                            evidence = evidence.model_copy(update={"problems": [*evidence.problems, problem]})
                            settled = "failed"
                stored = await asyncio.to_thread(
                    self.outbox.store_evidence, nid, evidence.model_dump_json(), chart, settled, self.clock(),
                    self.cfg.chart.keep,
                )
                self.metrics.evidence.labels(result="stored" if stored else "late").inc()
                if stored:
                    self.wake_sender(None)
                    if settled is not None:
                        analysis_open = False
                        self.metrics.analysis_outcomes.labels(outcome=settled).inc()
                else:
                    log.warning("evidence ready after the message deadline; the alert went without it",
                                extra={"notification_id": nid})
        if not analysis_open:
            return
        await self._follow_up(job, note, evidence, png, analysis, analysis_deadline)

    async def _follow_up(
        self, job: EnrichmentJob, note: Notification, evidence: Evidence | None, png: bytes | None,
        analysis: asyncio.Task[AnalysisResult] | None, deadline: float,
    ) -> None:
        """Wait for the analysis (within its deadline) and store it as a follow-up of the alert."""
        nid = job.notification_id
        if analysis is None:
            if self.analyst is None or self.clock() >= deadline:
                outcome = "expired" if self.analyst is not None else "failed"
                if await asyncio.to_thread(self.outbox.settle_analysis, nid, outcome, self.clock()):
                    self.metrics.analysis_outcomes.labels(outcome=outcome).inc()
                return
            if evidence is None and job.evidence:
                evidence = Evidence.model_validate_json(job.evidence)
            analysis = asyncio.create_task(self._analyse(note, evidence, png, deadline))
        try:
            result = await analysis
        except AnalysisFailed as exc:
            log.warning("analysis failed; no follow-up", extra={"notification_id": nid, "reason": exc.reason,
                                                                 "detail": exc.detail})
            if await asyncio.to_thread(self.outbox.settle_analysis, nid, "failed", self.clock()):
                self.metrics.analysis_outcomes.labels(outcome="failed").inc()
            return
        targets = [t for t in await asyncio.to_thread(self.outbox.delivery_targets, nid)
                   if "analysis" in self.config.evidence_parts(job.route, t)]
        payload = {**json.loads(job.payload),
                   FOLLOW_UP_KEY: FollowUp(of=nid, received_at=job.received_at, analysis=result).model_dump()}
        created = await asyncio.to_thread(
            self.outbox.add_follow_up, nid, job.route, targets, json.dumps(payload, ensure_ascii=False),
            self.clock(),
        )
        if created is not None:
            self.metrics.analysis_outcomes.labels(outcome="follow_up").inc()
            log.info("analysis follows the alert", extra={"notification_id": nid, "follow_up_id": created,
                                                          "targets": targets})
            self.wake_sender(targets)

    async def _analyse(self, note: Notification, evidence: Evidence | None, png: bytes | None,
                       deadline: float) -> AnalysisResult:
        assert self.analyst is not None
        prompt = build_prompt(note, evidence, self.cfg.match, self.cfg.analysis.language)
        return await self.analyst.analyse(cache_key(note), prompt, deadline, png)

    async def preview(self, note: Notification, route: str | None) -> tuple[Evidence, bytes | None]:
        """The evidence the route's targets would get now (the analysis if ready within the message
        deadline); nothing is stored."""
        parts = self.parts(route) if route is not None else self.cfg.available()
        evidence, chart = await self.gather(note, parts, self.cfg.deadline_seconds)
        png = chart.png if chart is not None else None
        if self.analyst is not None and "analysis" in parts and self._matching(note):
            try:
                result = await self._analyse(note, evidence, png, self.clock() + self.cfg.deadline_seconds)
                evidence = evidence.model_copy(update={"analysis": result})
            except AnalysisFailed as exc:
                problems = [*evidence.problems, f"analysis: {exc.reason}"]
                evidence = evidence.model_copy(update={"problems": problems})
        return evidence, png

    async def gather(
        self, note: Notification, parts: frozenset[str], within: float
    ) -> tuple[Evidence, StoredChart | None]:
        """Context, recent errors and the chart of a notification, all at once, within `within` seconds."""
        now = self.clock()
        alerts = self._matching(note)
        instances = list(dict.fromkeys(a.labels.get("instance", "") for a in alerts))
        shown = instances[: self.cfg.max_instances]
        first = {i: next(a for a in alerts if a.labels.get("instance", "") == i) for i in shown}
        problems: list[str] = []
        tasks: dict[str, asyncio.Task[Any]] = {}
        if self.prometheus is not None and "context" in parts:
            for instance in shown:
                alert = first[instance]
                tasks[f"context:{instance}"] = asyncio.create_task(self._timed("context", live.query_facts(
                    self.prometheus, live.selectors(self.cfg.match, instance),
                    live.alert_expression(alert.generatorURL), alert.labels, now, within)))
        if "errors" in parts:
            for instance in shown:
                if instance:
                    tasks[f"errors:{instance}"] = asyncio.create_task(self._timed("errors", recent_errors(
                        self.client, instance, self.cfg.errors.path, self.cfg.errors.count)))
        if self.prometheus is not None and "chart" in parts and alerts:
            tasks["chart"] = asyncio.create_task(self._timed("chart", self._chart(note, alerts, shown, now)))
        if tasks:
            await asyncio.wait(tasks.values(), timeout=within)
        results: dict[str, Any] = {}
        late: set[str] = set()
        for key, task in tasks.items():
            kind = key.split(":", 1)[0]
            if not task.done():
                task.cancel()
                late.add(kind)
                self.metrics.parts.labels(part=kind, result="failed").inc()
                continue
            error = task.exception()
            if error is None:
                results[key] = task.result()
                self.metrics.parts.labels(part=kind, result="ok").inc()
                continue
            self.metrics.parts.labels(part=kind, result="failed").inc()
            if not isinstance(error, PrometheusError | ErrorsUnavailable | OSError):
                log.error("evidence part failed", extra={"part": key}, exc_info=error)
            problems.append(f"{key}: {type(error).__name__ if not str(error) else error}"[:160])
        problems += [f"{kind}: not ready within {within:.1f} s" for kind in sorted(late)]
        evidence_instances = []
        for instance in shown:
            lines: list[Line] = []
            findings: list[Finding] = []
            context = results.get(f"context:{instance}")
            if context is not None:
                values, context_problems = context
                problems += [p for p in context_problems if p not in problems]
                lines, findings = live.describe(live.derive(values, now))
            errors_found: list[ErrorRecord] | None = results.get(f"errors:{instance}")
            errors = errors_found or []
            evidence_instances.append(InstanceEvidence(instance=instance, lines=lines, findings=findings,
                                                       errors=errors))
        chart: StoredChart | None = results.get("chart")
        ref = None
        if chart is not None:
            checksum = hashlib.md5(chart.png).hexdigest()  # noqa: S324 - WeCom's checksum, not security
            ref = ChartRef(id=chart.id, created_at=chart.created_at, expires_at=chart.expires_at,
                           md5=checksum, size=len(chart.png))
        return Evidence(at=now, instances=evidence_instances, more_instances=len(instances) - len(shown),
                        chart=ref, problems=problems[:6]), chart

    async def _timed(self, part: str, work: Any) -> Any:
        started = time.monotonic()
        try:
            return await work
        finally:
            self.metrics.part_duration.labels(part=part).observe(time.monotonic() - started)

    async def _chart(
        self, note: Notification, alerts: list[Alert], shown: list[str], now: float
    ) -> StoredChart:
        assert self.prometheus is not None
        base, _ = live.selectors(self.cfg.match, "")
        named = [i for i in shown if i]
        if len(named) == 1:
            sel = f"{base},instance={_quote(named[0])}"
        elif named:
            sel = f"{base},instance=~{_quote('|'.join(_escape_regex(i) for i in named))}"
        else:
            sel = base
        start = now - live.HOUR

        prometheus = self.prometheus

        async def series(spec: Series) -> tuple[Series, list[Curve]]:
            promql = string.Template(spec.promql).substitute(sel=sel)
            return spec, await prometheus.range(promql, start, now, 30)

        panels = await asyncio.gather(*(series(s) for s in CHART))
        started = min(a.startsAt.timestamp() for a in alerts)
        name = note.commonLabels.get("alertname") or alerts[0].labels.get("alertname", "alert")
        title = f"{name} · {', '.join(named) or 'service'} · last hour"
        png = await asyncio.to_thread(render_chart, title, panels, start, now, started)
        return StoredChart(secrets.token_hex(16), now, now + self.cfg.chart.expires_seconds, png)


def _escape_regex(value: str) -> str:
    """`value` as a literal inside a PromQL regex (before string quoting doubles the backslashes)."""
    return "".join("\\" + ch if ch in ".^$*+?()[]{}|\\" else ch for ch in value)
