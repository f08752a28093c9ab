"""How evidence reads in each channel and language (the message is the assertion's text on failure)."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry
from webhook_relay.charts import ChartLinks
from webhook_relay.config import Target
from webhook_relay.enrichment import Enricher, EnrichmentMetrics
from webhook_relay.evidence import AnalysisResult, FollowUp
from webhook_relay.render import Renderer

from tests.support.evidence import World, enriched_config, latency_note

CREDENTIALS = {"dingtalk": {"access_token": "t"}, "wecom": {"key": "k"}, "feishu": {"token": "f"},
               "email": {"smtp": {"host": "mail", "sender": "a@example.com"},
                         "recipients": {"critical": ["b@example.com"]}},
               "inbox": {}}
HEADINGS = {"zh": ("#### 🔎 现场数据 · 10.0.0.5:8000", "**诊断**", "**最近错误**"),
            "en": ("#### 🔎 Evidence · 10.0.0.5:8000", "**Diagnosis**", "**Recent errors**")}
ANALYSIS = AnalysisResult(hypothesis="The replica is saturated.", confidence="medium",
                          next_checks=["Add a replica"], model="janus-pro-7b",
                          text="The replica is saturated. Next: Add a replica")


@pytest.fixture(scope="module")
def gathered():
    """Evidence of the fake world's saturated replica, gathered once."""
    config = enriched_config()
    enricher = Enricher(config, None, lambda t: None, World().client(),  # type: ignore[arg-type]
                        EnrichmentMetrics(CollectorRegistry()))
    evidence, chart = asyncio.run(enricher.gather(latency_note(), config.enrichment.available(), 2.0))
    assert chart is not None
    return evidence.model_copy(update={"analysis": ANALYSIS}), chart.png


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("kind", ["dingtalk", "wecom", "feishu", "email", "inbox"])
def test_each_channel_shows_the_evidence_in_its_own_language(gathered, kind, language):
    """Numbers, diagnosis, errors and the analysis in the target's language (never the other's
    headings); the chart as the channel can show it."""
    evidence, png = gathered
    target = Target(kind=kind, language=language, **CREDENTIALS[kind])
    renderer = Renderer(target, charts=ChartLinks(b"t", "https://relay.example.com"))
    parts = frozenset({"context", "chart", "errors", "analysis"})
    rendered = renderer.render_budgeted(latency_note(), None, evidence, parts, png)
    text = "\n---\n".join(m.text for m in rendered.messages)
    other = "en" if language == "zh" else "zh"
    assert all(h in text for h in HEADINGS[language]), text
    assert not any(h in text for h in HEADINGS[other]), text
    saturated = "排队等待占 P95 的 80.8 %" if language == "zh" else "queue wait is 80.8 % of P95"
    assert saturated in text and "7f3a2c9e1b4d" in text and "janus-pro-7b" in text, text
    chart = {"dingtalk": "](https://relay.example.com/charts/", "feishu": "📈", "email": "📈",
             "inbox": "](/charts/", "wecom": None}[kind]
    if chart is None:
        assert rendered.messages[-1].image == png and "/charts/" not in text, text
    else:
        assert chart in text and not any(m.image for m in rendered.messages), text
    assert len(rendered.messages) <= renderer.max_messages


def test_the_follow_up_quotes_its_alert_without_mentioning_anyone():
    """The late analysis: a reply-style message naming the alert, its time and instance; no @mention."""
    target = Target(kind="dingtalk", access_token="t", language="en",
                    mentions={"critical": {"mobiles": ["13800000000"]}})
    follow = FollowUp(of=1, received_at=time.time(), analysis=ANALYSIS)
    [message] = Renderer(target).render_follow_up(latency_note(), follow)
    assert message.title == "AI analysis ↩ [FIRING:1] OfaVeHighLatency"
    assert "> Re: the alert received" in message.text and "(10.0.0.5:8000)" in message.text, message.text
    assert "1. Add a replica" in message.text and message.mention.is_empty() and "@138" not in message.text
