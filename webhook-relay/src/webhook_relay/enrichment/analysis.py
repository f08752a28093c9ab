"""An optional root-cause hypothesis from a language model behind an OpenAI-compatible API.

vLLM, Ollama, LMDeploy, llama.cpp's server and hosted APIs all answer `POST .../chat/completions`. The
model is given the alert, the live numbers, the diagnosis and the recent errors (and, for multimodal
models such as Janus-Pro-7B, the chart) and asked for JSON that follows `Answer`'s schema; an answer
that does not is refused like a failed call. Guard rails, because the alert must never wait on it:
- a hard deadline, enforced by cancelling the call (not checked once the model has answered);
- at most `max_concurrency` calls at once (waiting for a slot counts against the deadline);
- a circuit breaker: after `failures_to_open` failures in a row no call is made for `open_seconds`,
  then one trial call decides;
- a cache by the alerts' fingerprints, so a reminder of the same alerts reuses the answer.
Prompts and answers are logged (no key, the URL masked; no user text reaches the prompt: the recent
errors are redacted by the service and scrubbed by the relay).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from webhook_relay.alertmanager import Notification
from webhook_relay.config import Analysis as AnalysisConfig
from webhook_relay.enrichment.metrics import EnrichmentMetrics
from webhook_relay.evidence import AnalysisResult, Evidence, localize
from webhook_relay.masking import mask_url

log = logging.getLogger(__name__)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)
_PROMPT_LOG_CHARS = 4000


class Answer(BaseModel):
    """What the model must answer (its JSON schema is sent with the request)."""

    model_config = ConfigDict(extra="forbid")

    hypothesis: str = Field(min_length=3, max_length=600,
                            description="The most likely root cause, in one or two sentences.")
    confidence: Literal["low", "medium", "high"]
    next_checks: list[str] = Field(min_length=1, max_length=4,
                                   description="What an operator should look at next, most useful first.")


SCHEMA = Answer.model_json_schema()


class AnalysisFailed(Exception):
    """No usable answer; `reason` is a metric label (timeout, http_error, invalid, circuit_open)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def shown(answer: Answer, model: str, limit: int) -> AnalysisResult:
    """The answer within `limit` characters: the hypothesis first, then as many checks as fit."""
    hypothesis = cut(answer.hypothesis, max(40, limit * 2 // 3))
    checks: list[str] = []
    room = limit - len(hypothesis)
    for check in answer.next_checks:
        check = cut(check, 120)
        if len(check) + 4 > room:
            break
        checks.append(check)
        room -= len(check) + 4
    text = hypothesis + (" Next: " + "; ".join(checks) if checks else "")
    return AnalysisResult(hypothesis=hypothesis, confidence=answer.confidence, next_checks=checks,
                          model=model, text=cut(text, limit))


def parse_answer(content: str) -> Answer:
    """The model's text as an `Answer` (code fences and prose around the JSON object tolerated)."""
    text = _FENCE.sub("", content.strip())
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise AnalysisFailed("invalid", "no JSON object in the answer")
    try:
        return Answer.model_validate_json(text[start: end + 1])
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise AnalysisFailed("invalid", f"schema: {where}: {first['msg']}") from None


SYSTEM = (
    "You are an SRE assistant for OFA-VE, a GPU visual-entailment inference service (FastAPI, "
    "micro-batching, bounded queue, Prometheus metrics). Given an alert and the evidence gathered "
    "with it, state the most likely root cause and what to check next. Use only the evidence; say so "
    "when it is not enough. Answer with one JSON object and nothing else: "
    '{"hypothesis": string, "confidence": "low"|"medium"|"high", "next_checks": [string, ...]}. '
    "Keep the hypothesis under 200 characters and at most 3 short checks."
)


def build_prompt(note: Notification, evidence: Evidence | None, match: dict[str, str], language: str) -> str:
    """The user message: the firing alerts, then the evidence in English (times in UTC)."""
    from zoneinfo import ZoneInfo

    utc = ZoneInfo("UTC")
    lines = ["Alerts:"]
    for alert in note.alerts:
        if alert.status != "firing" or any(alert.labels.get(k) != v for k, v in match.items()):
            continue
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
        lines.append(f"- {labels}; started {alert.startsAt.isoformat()}")
        for name in ("summary", "description"):
            if alert.annotations.get(name):
                lines.append(f"  {name}: {cut(alert.annotations[name], 400)}")
    if evidence is not None:
        for inst in evidence.instances:
            lines.append(f"Evidence for {inst.instance or 'the service'} (times UTC):")
            lines += [f"- {localize(x.en, utc).replace('**', '')}" for x in inst.lines]
            lines += [f"- diagnosis: {localize(f.en, utc)}" for f in inst.findings]
            for e in inst.errors:
                lines.append(f"- recent error: {e.status_code} {e.code} cause={e.cause or '-'} "
                             f"message={e.message or '-'}")
        lines += [f"- missing: {p}" for p in evidence.problems]
    lines.append("Answer in Chinese." if language == "zh" else "Answer in English.")
    return "\n".join(lines)


def cache_key(note: Notification) -> str:
    """The firing alerts' fingerprints: the same alerts (a reminder, a re-sent group) share an answer."""
    prints = sorted(a.fingerprint or json.dumps(a.labels, sort_keys=True) for a in note.alerts
                    if a.status == "firing")
    return hashlib.sha256("\n".join(prints).encode()).hexdigest()


class Analyst:
    """Calls the model under a deadline, a concurrency bound, a circuit breaker and a cache."""

    def __init__(
        self, cfg: AnalysisConfig, client: httpx.AsyncClient, metrics: EnrichmentMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert cfg.url is not None
        self.cfg = cfg
        self.client = client
        self.metrics = metrics
        self.clock = clock
        url = cfg.url.rstrip("/")
        self.endpoint = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self._slots = asyncio.Semaphore(cfg.max_concurrency)
        self._failures = 0
        self._open_until = 0.0
        self._trial = False
        self._cache: dict[str, tuple[float, AnalysisResult]] = {}
        metrics.analysis_circuit_open.set(0)

    def cached(self, key: str) -> AnalysisResult | None:
        hit = self._cache.get(key)
        if hit is None or hit[0] < self.clock():
            self._cache.pop(key, None)
            return None
        return hit[1]

    def _admit(self) -> None:
        """Raise circuit_open while the breaker is open; let one trial through once it may close."""
        now = self.clock()
        if self._failures < self.cfg.failures_to_open:
            return
        if now < self._open_until or self._trial:
            raise AnalysisFailed("circuit_open", f"{self._failures} failures in a row")
        self._trial = True

    def _settle(self, ok: bool) -> None:
        self._trial = False
        if ok:
            self._failures = 0
            self.metrics.analysis_circuit_open.set(0)
            return
        self._failures += 1
        if self._failures >= self.cfg.failures_to_open:
            self._open_until = self.clock() + self.cfg.open_seconds
            self.metrics.analysis_circuit_open.set(1)
            log.warning("analysis circuit open", extra={"failures": self._failures,
                                                        "open_s": self.cfg.open_seconds})

    async def analyse(
        self, key: str, prompt: str, deadline: float, chart: bytes | None = None
    ) -> AnalysisResult:
        """The answer for `prompt`, by Unix time `deadline` at the latest, or AnalysisFailed."""
        hit = self.cached(key)
        if hit is not None:
            self.metrics.analysis_requests.labels(result="cached").inc()
            return hit
        try:
            self._admit()
        except AnalysisFailed:
            self.metrics.analysis_requests.labels(result="circuit_open").inc()
            raise
        started = time.monotonic()
        result = "ok"
        try:
            async with asyncio.timeout(max(0.0, deadline - self.clock())):
                async with self._slots:
                    self.metrics.analysis_in_flight.inc()
                    try:
                        answer = await self._call(prompt, chart)
                    finally:
                        self.metrics.analysis_in_flight.dec()
        except TimeoutError:
            result = "timeout"
            self._settle(False)
            raise AnalysisFailed("timeout", f"no answer within {self.cfg.deadline_seconds:g} s") from None
        except AnalysisFailed as exc:
            result = exc.reason
            self._settle(False)
            raise
        except BaseException:
            self._trial = False  # cancelled (shutdown): neither a success nor a failure
            result = ""
            raise
        finally:
            if result:
                self.metrics.analysis_requests.labels(result=result).inc()
                self.metrics.analysis_duration.observe(time.monotonic() - started)
        self._settle(True)
        value = shown(answer, self.cfg.model, self.cfg.max_chars)
        if self.cfg.cache_seconds > 0:
            self._cache[key] = (self.clock() + self.cfg.cache_seconds, value)
            if len(self._cache) > 1000:
                self._cache.pop(next(iter(self._cache)))
        return value

    def _body(self, prompt: str, chart: bytes | None) -> dict[str, Any]:
        content: str | list[dict[str, Any]] = prompt
        if chart is not None and self.cfg.send_chart:
            data = base64.b64encode(chart).decode("ascii")
            content = [{"type": "text", "text": prompt},
                       {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}]
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": content}],
            "temperature": 0,
            "max_tokens": self.cfg.max_tokens,
            "stream": False,
        }
        if self.cfg.response_format == "json_schema":
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "alert_analysis", "schema": SCHEMA, "strict": True}}
        elif self.cfg.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    async def _call(self, prompt: str, chart: bytes | None) -> Answer:
        headers = {}
        if self.cfg.api_key is not None:
            headers["Authorization"] = f"Bearer {self.cfg.api_key.get_secret_value()}"
        log.info("analysis prompt", extra={"model": self.cfg.model, "url": mask_url(self.endpoint),
                                           "prompt": prompt[:_PROMPT_LOG_CHARS],
                                           "chart": chart is not None and self.cfg.send_chart})
        try:
            reply = await self.client.post(self.endpoint, json=self._body(prompt, chart), headers=headers)
        except httpx.HTTPError as exc:
            raise AnalysisFailed("http_error", type(exc).__name__) from None
        if reply.status_code != 200:
            raise AnalysisFailed("http_error", f"HTTP {reply.status_code}")
        try:
            content = reply.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise AnalysisFailed("invalid", "not a chat-completions answer") from None
        if isinstance(content, list):  # some servers answer in parts
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise AnalysisFailed("invalid", "no text in the answer")
        log.info("analysis answer", extra={"model": self.cfg.model, "answer": content[:2000]})
        return parse_answer(content)
