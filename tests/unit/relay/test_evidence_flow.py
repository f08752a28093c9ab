"""Evidence between the outbox and rendering: a held alert, the enricher storing its evidence in time
(or not), the analysis in the message or as one follow-up, and the sender that never waits for any of it."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from prometheus_client import CollectorRegistry
from webhook_relay.charts import ChartLinks
from webhook_relay.enrichment import Enricher, EnrichmentMetrics
from webhook_relay.hold import evidence_hold
from webhook_relay.metrics import RelayMetrics
from webhook_relay.outbox import Outbox
from webhook_relay.render import Renderer
from webhook_relay.sender import Sender

from tests.support.evidence import World, enriched_config, latency_note
from tests.support.relay import alert, notification


class Chat:
    """Accepts every robot post and keeps its body."""

    def __init__(self) -> None:
        self.posts: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.posts.append(json.loads(request.content))
        return httpx.Response(200, json={"errcode": 0, "errmsg": "ok", "code": 0})

    def texts(self) -> list[str]:
        out = []
        for body in self.posts:
            if body.get("msgtype") == "markdown":
                out.append(body["markdown"].get("text") or body["markdown"].get("content", ""))
            elif body.get("msg_type") == "interactive":
                out.append(body["card"]["elements"][0]["content"])
            else:
                out.append(f"<{body.get('msgtype')}>")
        return out


@pytest.fixture
def rig(tmp_path):
    """Outbox, sender (mocked robots), enricher (fake Prometheus, error views and model) on one config."""
    opened: list[Outbox] = []

    def make(**config_kwargs):
        config = enriched_config(str(tmp_path / "o.db"), **config_kwargs)
        outbox = Outbox(tmp_path / "o.db")
        opened.append(outbox)
        chat, world = Chat(), World()
        registry = CollectorRegistry()
        robots = httpx.AsyncClient(transport=httpx.MockTransport(chat))
        sender = Sender(config, outbox, RelayMetrics(registry), robots,
                        charts=ChartLinks(b"relay-token", config.enrichment.chart.public_url))

        def enricher() -> Enricher:
            metrics = EnrichmentMetrics(CollectorRegistry())
            return Enricher(config, outbox, sender.wake, world.client(), metrics, poll_seconds=0.05)

        return config, outbox, sender, enricher, chat, world, registry

    yield make
    for outbox in opened:
        outbox.close()


def store(config, outbox, note=None, route="critical"):
    note = note or latency_note()
    now = time.time()
    hold = evidence_hold(config, route, note, now)
    nid = outbox.enqueue(route, config.routes[route].targets, note.model_dump_json(), None, 0, now, hold)
    return nid, hold


async def drain(sender, targets=("dingtalk-ops", "wecom-ops", "feishu-ops", "inbox")):
    for target in targets:
        while await sender.step(target):
            pass


async def run_jobs(enricher):
    """One pass over the outbox's enrichment jobs, waiting for each to finish."""
    for job in enricher.outbox.enrichment_jobs():
        await enricher._job(job)


def test_an_enriched_alert_waits_for_its_evidence_and_goes_with_it(rig):
    """Stored with a hold, the alert is not due until the enricher stores its evidence (well before the
    deadline), then every target gets it: numbers, diagnosis, errors, the chart as a link or an image."""
    config, outbox, sender, enricher, chat, _world, _ = rig()
    _nid, hold = store(config, outbox)
    assert hold is not None and set(hold.targets) == set(config.routes["critical"].targets)
    asyncio.run(drain(sender))
    assert chat.posts == []  # held
    started = time.monotonic()
    asyncio.run(run_jobs(enricher()))
    assert time.monotonic() - started < 1.0
    asyncio.run(drain(sender))
    texts = chat.texts()
    assert len(texts) == 4, texts  # DingTalk, WeCom text + image, Feishu
    dingtalk, wecom, image, feishu = texts
    assert "排队等待占 P95 的 80.8 %：容量饱和，而不是推理变慢" in dingtalk, dingtalk
    assert "![近 1 小时图表](https://relay.example.com/charts/" in dingtalk, dingtalk
    assert "7f3a2c9e1b4d" in wecom and "/charts/" not in wecom and image == "<image>", wecom
    assert "queue wait is 80.8 % of P95" in feishu, feishu
    assert "[📈 Chart of the last hour](https://" in feishu, feishu
    entry = sender.inbox.entries("inbox")[0]
    assert "![last hour](/charts/" in entry.text, entry.text


def test_evidence_past_the_deadline_is_refused_and_the_alert_goes_as_it_is(rig):
    """An enricher that gets to an alert after its hold (a restart, a stall) stores nothing: the alert is
    sent plain, and evidence offered after the hold is refused by the outbox itself."""
    config, outbox, sender, enricher, chat, world, _ = rig(deadline=0.3)
    nid, hold = store(config, outbox)
    time.sleep(max(0.0, hold.until - time.time()))
    asyncio.run(run_jobs(enricher()))
    assert outbox.enrichment_jobs() == [] and world.prometheus.queries == []
    assert outbox.store_evidence(nid, "{}", None, None, time.time()) is False
    asyncio.run(drain(sender))
    texts = chat.texts()
    assert len(texts) == 3 and all("现场数据" not in t and "Evidence" not in t for t in texts), texts


def test_a_slow_prometheus_is_cut_off_and_the_rest_goes_in_time(rig):
    """Prometheus slower than the deadline: what is ready (the recent errors) goes, with a line naming
    what was not, and the alert is released before its hold ends."""
    config, outbox, sender, enricher, chat, world, _ = rig(deadline=0.5)
    world.prometheus.delay = 2
    _nid, hold = store(config, outbox)
    asyncio.run(run_jobs(enricher()))
    assert time.time() < hold.until
    asyncio.run(drain(sender))
    feishu = chat.texts()[-1]
    assert "7f3a2c9e1b4d" in feishu and "context: not ready within" in feishu, feishu


def test_a_dead_enricher_delays_no_alert_past_the_hold(rig):
    """Without any enricher, the held alert is due at its hold and goes without evidence."""
    config, outbox, sender, _, chat, _, _ = rig(deadline=0.2)
    store(config, outbox)
    time.sleep(0.25)
    asyncio.run(drain(sender))
    assert len(chat.texts()) == 3


def test_prometheus_down_the_alert_goes_at_once_with_a_line_saying_so(rig):
    """Prometheus refusing every query costs nothing: the evidence says what is missing, errors still come."""
    config, outbox, sender, enricher, chat, world, _ = rig()
    world.prometheus.down = True
    store(config, outbox)
    asyncio.run(run_jobs(enricher()))
    asyncio.run(drain(sender))
    feishu = chat.texts()[-1]
    assert "> ⚠️ Evidence incomplete: chart: HTTP 503 injected outage; prometheus: 19 of 19 queries " \
           "failed (HTTP 503 injected outage)" in feishu, feishu
    assert "7f3a2c9e1b4d" in feishu and "Diagnosis" not in feishu, feishu


def test_an_alert_that_does_not_match_is_not_held(rig):
    """Only firing alerts with the match labels are held; others go at once, as before."""
    config, outbox, sender, _, chat, _, _ = rig()
    other = notification(alert("DiskFull", service="node"))
    from webhook_relay.alertmanager import Notification

    note = Notification.model_validate(other)
    assert evidence_hold(config, "critical", note, time.time()) is None
    store(config, outbox, note)
    asyncio.run(drain(sender))
    assert len(chat.texts()) == 3 and outbox.enrichment_jobs() == []


def test_an_analysis_ready_in_time_is_part_of_the_message(rig):
    """A fast model's answer is in the first message, and no follow-up is created."""
    config, outbox, sender, enricher, chat, _world, _ = rig(analysis=True)
    store(config, outbox)
    asyncio.run(run_jobs(enricher()))
    asyncio.run(drain(sender))
    feishu = chat.texts()[-1]
    assert "**🤖 AI analysis** (janus-pro-7b, confidence medium" in feishu, feishu
    assert outbox.enrichment_jobs() == [] and len(chat.texts()) == 4


def test_a_late_analysis_follows_as_one_second_message(rig):
    """A model slower than the message deadline: the alert goes with its evidence, the answer follows
    as a reply quoting it, to the same targets; running the job again creates nothing more."""
    config, outbox, sender, enricher, chat, world, _registry = rig(analysis=True, deadline=0.4)
    world.llm_delay = 0.8
    nid, _ = store(config, outbox)
    worker = enricher()

    async def scenario() -> None:
        job = outbox.enrichment_jobs()[0]
        task = asyncio.create_task(worker._job(job))
        await asyncio.sleep(0.5)
        await drain(sender)  # the alert went with its evidence while the model still thinks
        assert len(chat.texts()) == 4 and "AI analysis" not in chat.texts()[-1]
        await task
        await drain(sender)

    asyncio.run(scenario())
    texts = chat.texts()
    assert len(texts) == 7, texts
    follow_ups = texts[4:]
    assert all("janus-pro-7b" in t for t in follow_ups), follow_ups
    assert "### 🤖 AI 分析 · [FIRING:1] OfaVeHighLatency" in follow_ups[0], follow_ups[0]
    assert "**Next checks**:" in follow_ups[2] and "> Re: the alert received" in follow_ups[2], follow_ups[2]
    titles = [p["markdown"]["title"] for p in chat.posts if "markdown" in p and "title" in p["markdown"]]
    assert titles[-1] == "AI 分析 ↩ [FIRING:1] OfaVeHighLatency"
    # The follow-up exists once: its creation settled the analysis in the same commit.
    assert outbox.add_follow_up(nid, "critical", ["inbox"], "{}", time.time()) is None
    assert outbox.enrichment_jobs() == []
    assert sender.inbox.entries("inbox")[0].title == "AI analysis ↩ [FIRING:1] OfaVeHighLatency"


def test_a_restart_during_the_analysis_posts_it_once(rig):
    """Killed while the model was thinking (evidence stored, analysis pending): the next process asks
    again within the deadline and creates the one follow-up; a third start finds nothing left to do."""
    config, outbox, sender, enricher, chat, world, _ = rig(analysis=True, deadline=0.4)
    world.llm_delay = 5
    store(config, outbox)

    async def killed() -> None:
        worker = enricher()
        job = outbox.enrichment_jobs()[0]
        task = asyncio.create_task(worker._job(job))
        await asyncio.sleep(0.6)  # evidence stored, the model still thinking
        task.cancel()  # the process dies: nothing after this point runs
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(killed())
    [job] = outbox.enrichment_jobs()
    assert (job.state, job.analysis) == ("ready", "pending")
    world.llm_delay = 0
    asyncio.run(run_jobs(enricher()))
    asyncio.run(run_jobs(enricher()))
    asyncio.run(drain(sender))
    texts = chat.texts()
    assert len(world.llm_requests) == 2
    # One follow-up per robot (DingTalk, WeCom, Feishu), each quoting the alert.
    assert sum("> 回复：" in t or "> Re: the alert" in t for t in texts) == 3, texts


def test_an_analysis_past_its_deadline_after_a_restart_expires(rig):
    """A pending analysis found after its deadline is settled as expired, without asking the model."""
    config, outbox, _, enricher, _, world, _ = rig(analysis=True, deadline=0.2, analysis_deadline=0.3)
    store(config, outbox)
    time.sleep(0.35)
    asyncio.run(run_jobs(enricher()))
    assert world.llm_requests == [] and outbox.enrichment_jobs() == []


def test_a_failing_model_is_a_line_in_the_message(rig):
    """A model answering HTTP 500 before the deadline: the alert says the analysis failed."""
    config, outbox, sender, enricher, chat, world, _ = rig(analysis=True)
    world.llm_mode = "error"
    store(config, outbox)
    asyncio.run(run_jobs(enricher()))
    asyncio.run(drain(sender))
    assert "analysis: http_error (HTTP 500)" in chat.texts()[-1]


def test_the_route_and_target_choose_the_parts(rig):
    """Route `warning` asks for live numbers only: no chart, no recent errors, no image message."""
    config, outbox, sender, enricher, chat, world, _ = rig()
    store(config, outbox, route="warning")
    asyncio.run(run_jobs(enricher()))
    asyncio.run(drain(sender, ("dingtalk-ops", "inbox")))
    [dingtalk] = chat.texts()
    assert "**诊断**" in dingtalk and "/charts/" not in dingtalk and "7f3a2c9e1b4d" not in dingtalk, dingtalk
    assert world.error_views == []


@pytest.mark.parametrize("kind", ["wecom", "dingtalk", "feishu"])
def test_evidence_never_pushes_a_notification_over_its_budget(kind):
    """A 20-instance group with evidence stays within max_messages and the byte limit, in the mode it
    would have without evidence; a single alert keeps its full evidence (and WeCom its image)."""
    from webhook_relay.evidence import ChartRef, Evidence, Finding, InstanceEvidence, Line

    config = enriched_config()
    name = f"{kind}-ops"
    renderer = Renderer(config.targets[name], charts=ChartLinks(b"t", "https://relay.example.com"))
    parts = config.evidence_parts("critical", name)
    instances = [f"10.0.0.{i}:8000" for i in range(20)]
    lines = [Line(en="**Traffic**: 12.3/s · server errors 4.1 %" * 3,
                  zh="**流量**：12.3/s · 服务端错误 4.1 %" * 3)] * 6
    finding = Finding(key="k", en="e" * 200, zh="诊" * 90)
    evidence = Evidence(
        at=time.time(),
        instances=[InstanceEvidence(instance=i, lines=lines, findings=[finding]) for i in instances[:3]],
        more_instances=17,
        chart=ChartRef(id="0" * 32, created_at=0, expires_at=time.time() + 60, md5="x", size=10),
    )
    png = b"\x89PNG" + b"0" * 1000
    group = latency_note(*instances)
    plain = renderer.render_budgeted(group)
    rich = renderer.render_budgeted(group, None, evidence, parts, png)
    assert rich.mode == plain.mode and len(rich.messages) <= 3
    assert all(len(m.text.encode()) <= renderer.target.message_bytes for m in rich.messages)
    single = renderer.render_budgeted(latency_note(), None, evidence, parts, png)
    assert len(single.messages) <= 3 and single.mode == "full"
    assert any(m.image for m in single.messages) == (kind == "wecom")
    text = "\n".join(m.text for m in single.messages)
    assert "10.0.0.0:8000" in text, text
