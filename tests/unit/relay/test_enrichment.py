"""The enrichment's parts on their own: the query/diagnosis table, live numbers from a fake Prometheus
answer set, the chart PNG, recent errors, and the language model behind its guard rails."""

from __future__ import annotations

import asyncio
import io
import re
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image
from prometheus_client import CollectorRegistry
from webhook_relay.enrichment import live
from webhook_relay.enrichment.analysis import SCHEMA, AnalysisFailed, Analyst, parse_answer, shown
from webhook_relay.enrichment.chart import render_chart
from webhook_relay.enrichment.errors import ErrorsUnavailable, recent_errors
from webhook_relay.enrichment.metrics import EnrichmentMetrics
from webhook_relay.enrichment.prometheus import Curve, Prometheus
from webhook_relay.enrichment.table import CHART, DIAGNOSES, QUERIES, SERVER_ERRORS, SHED_ERRORS
from webhook_relay.evidence import localize

from tests.support.env import ROOT
from tests.support.evidence import LATENCY_EXPR, World, enriched_config
from tests.support.fakeprom import INSTANCE

SHANGHAI = __import__("zoneinfo").ZoneInfo("Asia/Shanghai")


def _facts(world: World | None = None, now: float | None = None) -> dict:
    world = world or World()
    now = now or time.time()

    async def run() -> tuple[dict, list[str]]:
        async with world.client() as client:
            prom = Prometheus("http://prometheus:9090", client)
            expr = live.alert_expression("http://x/graph?g0.expr=" + LATENCY_EXPR.replace("\n", "%0A"))
            return await live.query_facts(prom, live.selectors({"service": "ofa-ve"}, INSTANCE), expr,
                                          {"instance": INSTANCE, "service": "ofa-ve"}, now, 2.0)

    values, problems = asyncio.run(run())
    assert problems == []
    return live.derive(values, now)


def test_server_error_codes_are_the_services_own():
    """The table's server error codes are ofa-ve's (a new code must be added to the table too)."""
    from ofa_ve.errors import SERVER_ERROR_CODES

    assert set(SERVER_ERRORS) == set(SERVER_ERROR_CODES) and set(SHED_ERRORS) <= set(SERVER_ERRORS)


def test_every_query_reads_a_series_the_rules_record_or_ofa_ve_exports():
    """Each recording rule a query names exists in prometheus/rules (a renamed rule breaks a test)."""
    rules = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "prometheus" / "rules").glob("*.yml"))
    recorded = set(re.findall(r"record: (\S+)", rules))
    named = {name for q in (*QUERIES, *CHART) for name in re.findall(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b",
                                                                      q.promql)}
    assert named and named <= recorded, named - recorded


def test_the_readme_lists_every_diagnosis_rule_in_both_languages():
    """webhook-relay/README.md's diagnosis table has one row per rule with its English sentence."""
    readme = (ROOT / "webhook-relay" / "README.md").read_text(encoding="utf-8")
    for rule in DIAGNOSES:
        assert f"| `{rule.key}` |" in readme, rule.key
        assert rule.en.split("{")[0].strip() in readme, rule.key


@pytest.mark.parametrize(("url_expr", "stripped"), [
    (LATENCY_EXPR, LATENCY_EXPR.split("\n")[0]),
    ("ofa_ve_queue_depth / (ofa_ve_queue_capacity > 0) > 0.9",
     "ofa_ve_queue_depth / (ofa_ve_queue_capacity > 0)"),
    ("up == 0", "up"),
    ('instance:ofa_ve_request_errors:ratio_rate5m > 0.03\nand on (service, instance) '
     'instance:ofa_ve_requests:rate5m >= 0.1', "instance:ofa_ve_request_errors:ratio_rate5m"),
    ('absent(up{job="ofa-ve"})', 'absent(up{job="ofa-ve"})'),
    ('sum by (reason) (rate(ofa_ve_rejected_total{reason!="not_ready"}[5m])) > 0.01',
     'sum by (reason) (rate(ofa_ve_rejected_total{reason!="not_ready"}[5m]))'),
])
def test_the_alerts_own_expression_loses_its_threshold(url_expr, stripped):
    """`x > 2` becomes `x`; a guard after `and` goes; comparisons inside brackets and strings stay."""
    from urllib.parse import quote

    assert live.alert_expression("http://prometheus:9090/graph?g0.expr=" + quote(url_expr)) == stripped
    assert live.alert_expression("") is None


def test_live_numbers_and_the_diagnosis_of_a_saturated_replica():
    """The fake answer set (queue 2.1 s of a 2.6 s P95, OOM errors for 20 min, 2 of 3 replicas ready)
    gives the lines of numbers and the table's conclusions, in both languages."""
    now = time.time()
    facts = _facts(now=now)
    lines, findings = live.describe(facts)
    text = "\n".join(x.en for x in lines)
    assert "**Alert value**: 2.80 s now · 410 ms an hour ago" in text
    assert "12.3/s · server errors 4.1 % (gpu_out_of_memory 3.9 %, deadline_exceeded 0.2 %)" in text
    assert "2.60 s in all (queue 2.10 s, inference 450 ms, preprocess 30 ms)" in text
    assert "58 of 64 · rejected 3.20/s (overloaded 3.20/s)" in text
    assert "revision v1.0.1 · ready on 2 of 3 replicas" in text
    keys = [f.key for f in findings]
    assert keys == ["not_ready", "errors", "saturated", "shedding", "gpu_memory", "new"], keys
    by_key = {f.key: f for f in findings}
    assert by_key["saturated"].en == "queue wait is 80.8 % of P95: saturated, not slow inference"
    assert by_key["not_ready"].en == "model not ready on 1 of 3 replicas"
    assert by_key["not_ready"].zh == "3 个副本中有 1 个模型未就绪"
    since = localize(by_key["errors"].en, SHANGHAI)
    assert re.fullmatch(r"gpu_out_of_memory errors since \d\d:\d\d \(3\.9 % of requests now\)", since), since
    assert "deadline_exceeded" not in since  # not ongoing in the range answer: no "since" line


def test_a_healthy_fast_instance_gets_numbers_and_no_conclusion():
    """With an empty queue, fast stages and no errors, no rule fires but `slow_inference`'s guard holds."""
    world = World()
    world.prometheus.answers = [a for a in world.prometheus.answers
                                if a[0] not in ("increase(ofa_ve_errors_total", "rate(ofa_ve_errors_total",
                                                "ofa_ve_rejected_total", "count(ofa_ve_model_ready",
                                                "sum(ofa_ve_model_ready", "service:ofa_ve_replicas_expected",
                                                "instance_gpu:ofa_ve_gpu_memory:ratio")]
    fast = {"queue": 0.01, "inference": 0.2}
    world.prometheus.answers.insert(0, ("instance_stage_quantile", "stage", fast))
    world.prometheus.answers.insert(0, ("max(instance_endpoint_quantile", None, 0.3))
    facts = _facts(world)
    _, findings = live.describe(facts)
    assert [f.key for f in findings] == ["slow_inference", "new"]


def test_queue_wait_without_a_backlog_is_not_saturation():
    """A large queue share with an empty queue and nothing rejected (seen on the e2e stack's tiny model:
    the micro-batch window) is `batching`, not `saturated`."""
    facts = live.derive({"qps": 0.06, "p95": 0.226, "p95_stage": {"queue": 0.13, "inference": 0.275},
                         "queue_depth": 0, "queue_capacity": 64, "rejected": {}}, time.time())
    assert [f.key for f in live.describe(facts)[1]] == ["batching"]
    facts = live.derive({"qps": 9.0, "p95": 2.6, "p95_stage": {"queue": 2.1}, "queue_depth": 5,
                         "queue_capacity": 64, "rejected": {"overloaded": 0.5}}, time.time())
    assert [f.key for f in live.describe(facts)[1]] == ["saturated", "shedding"]


def test_numbers_without_a_known_pattern_say_so():
    """When no rule holds but there are numbers, the fallback row says so; without numbers, nothing."""
    _, findings = live.describe({"qps": 3.0, "p95": 0.2})
    assert [f.key for f in findings] == ["none"]
    assert live.describe({})[1] == []


def test_prometheus_down_is_a_problem_line_not_an_exception():
    """Every query failing yields no numbers and one line naming the cause."""
    world = World()
    world.prometheus.down = True

    async def run() -> tuple[dict, list[str]]:
        async with world.client() as client:
            prom = Prometheus("http://prometheus:9090", client)
            return await live.query_facts(prom, ("a", "b"), None, {}, time.time(), 1.0)

    values, problems = asyncio.run(run())
    assert [k for k in values if k != "value_unit"] == []
    assert problems == [f"prometheus: {len(QUERIES) - 2} of {len(QUERIES) - 2} queries failed "
                        "(HTTP 503 injected outage)"]


def test_a_slow_prometheus_is_cut_off_at_the_deadline():
    """Queries that do not answer within the time given end as one problem line, on time."""
    world = World()
    world.prometheus.delay = 5

    async def run() -> tuple[dict, list[str]]:
        async with world.client() as client:
            prom = Prometheus("http://prometheus:9090", client)
            return await live.query_facts(prom, ("a", "b"), None, {}, time.time(), 0.3)

    started = time.monotonic()
    _, problems = asyncio.run(run())
    assert time.monotonic() - started < 2
    assert problems and "no answer within 0.3 s" in problems[0]


def test_the_chart_is_a_non_blank_png_within_wecoms_limit(tmp_path: Path):
    """One PNG of four panels, lines in colour, well under WeCom's 2 MB; kept for a look on failure."""
    now = time.time()
    curves = [Curve({"instance": f"10.0.0.{i}:8000"}, [(now - 3600 + 30 * k, (k % 40) * (i + 1) / 10)
                                                      for k in range(121)]) for i in range(3)]
    png = render_chart("OfaVeHighLatency · 3 instances · last hour", [(s, curves) for s in CHART],
                       now - 3600, now, marker=now - 900)
    (tmp_path / "chart.png").write_bytes(png)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (960, 600)
    assert len(png) < 2 * 1024 * 1024
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None
    white = dict((rgb, n) for n, rgb in colours).get((255, 255, 255), 0)
    assert white < image.size[0] * image.size[1] * 0.97, "the chart is (almost) blank"
    assert (26, 115, 232) in {rgb for _, rgb in colours} and (217, 48, 37) in {rgb for _, rgb in colours}


def test_recent_errors_are_bounded_and_scrubbed_again():
    """The replica's view is asked at http://<instance>/v1/errors; tokens and URLs in messages are masked."""
    world = World()

    async def run() -> list:
        async with world.client() as client:
            return await recent_errors(client, INSTANCE, "/v1/errors", 3)

    records = asyncio.run(run())
    assert world.error_views == [INSTANCE]
    assert [r.request_id for r in records] == ["7f3a2c9e1b4d", "0c81d5aa9e02"]
    text = str([r.model_dump() for r in records])
    assert "abcdefabcdef" not in text and "u:p@" not in text and "hub.example" in text

    async def bad() -> None:
        async with world.client() as client:
            await recent_errors(client, "not a host/../x", "/v1/errors", 3)

    with pytest.raises(ErrorsUnavailable):
        asyncio.run(bad())


# --- the language model -----------------------------------------------------------------------------


def _analyst(
    world: World, clock=time.time, **overrides
) -> tuple[Analyst, CollectorRegistry, httpx.AsyncClient]:
    cfg = enriched_config(analysis=True).enrichment.analysis
    if overrides:
        cfg = cfg.model_copy(update=overrides)
    registry = CollectorRegistry()
    client = world.client()
    return Analyst(cfg, client, EnrichmentMetrics(registry), clock), registry, client


def _count(registry: CollectorRegistry, result: str) -> float:
    return registry.get_sample_value("webhook_relay_analysis_requests_total", {"result": result}) or 0


def test_a_good_answer_is_validated_cut_and_cached():
    """A fenced JSON answer passes the schema, is shown within max_chars, and a second ask of the same
    alerts is served from the cache; the request carries the schema and the bearer key."""
    world = World()
    analyst, registry, client = _analyst(world)

    async def run() -> tuple:
        first = await analyst.analyse("k", "prompt", time.time() + 5)
        second = await analyst.analyse("k", "prompt", time.time() + 5)
        await client.aclose()
        return first, second

    first, second = asyncio.run(run())
    assert first == second and len(world.llm_requests) == 1
    assert first.confidence == "medium" and first.hypothesis.startswith("The replica is saturated")
    assert len(first.text) <= 280 and first.model == "janus-pro-7b"
    body = world.llm_requests[0]["body"]
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert world.llm_requests[0]["authorization"] == "Bearer sk-test-secret"
    assert (_count(registry, "ok"), _count(registry, "cached")) == (1, 1)


@pytest.mark.parametrize(("mode", "reason"), [("garbage", "invalid"), ("schema", "invalid"),
                                              ("error", "http_error")])
def test_bad_answers_are_refused(mode, reason):
    """Prose, JSON that breaks the schema and HTTP 500 are failures with their own reason."""
    world = World()
    world.llm_mode = mode
    analyst, registry, client = _analyst(world)

    async def run() -> None:
        try:
            await analyst.analyse("k", "prompt", time.time() + 5)
        finally:
            await client.aclose()

    with pytest.raises(AnalysisFailed) as info:
        asyncio.run(run())
    assert info.value.reason == reason and _count(registry, reason) == 1


def test_a_slow_model_is_cut_off_at_the_deadline():
    """The deadline cancels the call itself: a model that takes 5 s costs 0.3 s."""
    world = World()
    world.llm_delay = 5
    analyst, registry, client = _analyst(world)

    async def run() -> None:
        try:
            await analyst.analyse("k", "prompt", time.time() + 0.3)
        finally:
            await client.aclose()

    started = time.monotonic()
    with pytest.raises(AnalysisFailed, match="timeout"):
        asyncio.run(run())
    assert time.monotonic() - started < 1.5 and _count(registry, "timeout") == 1


def test_the_circuit_opens_after_failures_and_one_trial_closes_it():
    """Two failures in a row open the breaker (no call is made), a trial after open_seconds closes it."""
    world = World()
    world.llm_mode = "error"
    now = [1000.0]
    analyst, registry, client = _analyst(world, clock=lambda: now[0], cache_seconds=0)

    async def ask() -> str:
        try:
            await analyst.analyse("k", "p", now[0] + 5)
            return "ok"
        except AnalysisFailed as exc:
            return exc.reason

    async def run() -> list[str]:
        seen = [await ask(), await ask(), await ask()]
        world.llm_mode = "good"
        now[0] += 61
        seen += [await ask(), await ask()]
        await client.aclose()
        return seen

    assert asyncio.run(run()) == ["http_error", "http_error", "circuit_open", "ok", "ok"]
    assert len(world.llm_requests) == 4
    assert registry.get_sample_value("webhook_relay_analysis_circuit_open") == 0


def test_concurrency_is_bounded():
    """With max_concurrency 1, two calls never overlap at the model."""
    world = World()
    world.llm_delay = 0.2
    analyst, _, client = _analyst(world, max_concurrency=1, cache_seconds=0)

    async def run() -> None:
        await asyncio.gather(*(analyst.analyse(f"k{i}", "p", time.time() + 5) for i in range(2)))
        await client.aclose()

    asyncio.run(run())
    starts = sorted(r["at"] for r in world.llm_requests)
    assert len(starts) == 2 and starts[1] - starts[0] >= 0.19


def test_shown_answers_fit_the_limit():
    """A long hypothesis and long checks are cut so the shown text stays within max_chars."""
    answer = parse_answer('{"hypothesis": "' + "x" * 500 + '", "confidence": "low", "next_checks": ["'
                          + "y" * 300 + '", "short"]}')
    result = shown(answer, "m", 280)
    assert len(result.text) <= 280 and result.text.startswith("xxx")


def test_prompts_and_answers_are_logged_without_the_key(caplog):
    """The prompt and the model's answer are in the log; the API key is not, and the URL is masked."""
    world = World()
    analyst, _, client = _analyst(world)

    async def run() -> None:
        await analyst.analyse("k", "alert OfaVeHighLatency on 10.0.0.5:8000", time.time() + 5)
        await client.aclose()

    with caplog.at_level("INFO", logger="webhook_relay.enrichment.analysis"):
        asyncio.run(run())
    records = {r.getMessage(): r for r in caplog.records}
    assert records["analysis prompt"].prompt == "alert OfaVeHighLatency on 10.0.0.5:8000"  # type: ignore[attr-defined]
    assert "The replica is saturated" in records["analysis answer"].answer  # type: ignore[attr-defined]
    assert "sk-test-secret" not in caplog.text
    assert all("sk-test-secret" not in str(vars(r)) for r in caplog.records)
