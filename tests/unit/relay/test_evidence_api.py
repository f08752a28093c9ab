"""Evidence through the relay's HTTP API: the webhook's hold, /api/v1/preview, the signed chart links,
and the delivery core that never imports the enrichment package."""

from __future__ import annotations

import ast
import base64
import hashlib
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from webhook_relay.app import create_app
from webhook_relay.charts import ChartLinks
from webhook_relay.outbox import Outbox, StoredChart

from tests.support.env import ROOT
from tests.support.evidence import World, enriched_config, latency_alert
from tests.support.relay import notification, relay_config

AUTH = {"Authorization": "Bearer relay-token"}
# receive -> commit -> acknowledge -> send, and what rendering needs: none of it may import enrichment.
CORE = ["alertmanager.py", "outbox.py", "sender.py", "render.py", "hold.py", "evidence.py", "charts.py",
        "split.py", "ratelimit.py", "inbox.py", "config.py", "routes/webhooks.py", "channels"]


def no_chat(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected request to {request.url}")


@pytest.fixture
def app(tmp_path):
    opened: list[Outbox] = []

    def make(config=None, world: World | None = None):
        config = config or enriched_config(str(tmp_path / "o.db"))
        outbox = Outbox(tmp_path / "o.db")
        opened.append(outbox)
        world = world or World()
        application = create_app(config, CollectorRegistry(), outbox, run_sender=False,
                                 client=httpx.AsyncClient(transport=httpx.MockTransport(no_chat)),
                                 enrichment_client=world.client())
        return TestClient(application), outbox, world

    yield make
    for outbox in opened:
        outbox.close()


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_delivery_core_does_not_import_the_enrichment_package():
    """Webhooks, outbox, sender, rendering and channels know evidence only as data (evidence.py)."""
    package = ROOT / "webhook-relay" / "src" / "webhook_relay"
    files = [p for name in CORE for p in ([package / name] if name.endswith(".py")
                                          else sorted((package / name).glob("*.py")))]
    assert len(files) > 12
    for path in files:
        assert not any(m.startswith("webhook_relay.enrichment") for m in _imports(path)), path


def test_a_matching_alert_is_stored_with_a_hold_and_others_are_not(app):
    """The webhook stores an ofa-ve alert due at the message deadline, with a pending enrichment row;
    with enrichment off, nothing changes."""
    client, outbox, _ = app()
    before = time.time()
    reply = client.post("/webhook/critical", json=notification(latency_alert()), headers=AUTH)
    assert reply.status_code == 202
    assert outbox.due("dingtalk-ops", time.time()) == []
    [job] = outbox.enrichment_jobs()
    assert before + 2 <= job.hold_until <= time.time() + 2
    assert (job.state, job.analysis) == ("pending", "none")
    assert len(outbox.due("dingtalk-ops", job.hold_until)) == 1


def test_without_enrichment_nothing_is_held(tmp_path):
    """The relay's default config (enrichment off): due at once, no enrichment row, no enricher task."""
    config = relay_config(db=str(tmp_path / "o.db"))
    outbox = Outbox(tmp_path / "o.db")
    try:
        application = create_app(config, CollectorRegistry(), outbox, run_sender=False,
                                 client=httpx.AsyncClient(transport=httpx.MockTransport(no_chat)))
        client = TestClient(application)
        reply = client.post("/webhook/critical", json=notification(latency_alert()), headers=AUTH)
        assert reply.status_code == 202
        assert len(outbox.due("dingtalk-ops", time.time())) == 1 and outbox.enrichment_jobs() == []
        assert "enrichment" not in application.state.supervisor.components()
    finally:
        outbox.close()


def test_preview_shows_the_evidence_and_each_targets_messages(app):
    """/api/v1/preview gathers the evidence as the enricher would and renders every target with it:
    WeCom's image message with base64 and md5, DingTalk's image link; the PNG itself is returned too."""
    client, outbox, _world = app()
    reply = client.post("/api/v1/preview", headers=AUTH,
                        json={"route": "critical", "payload": notification(latency_alert())})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    evidence = body["evidence"]
    findings = [f["key"] for f in evidence["instances"][0]["findings"]]
    assert findings[:3] == ["not_ready", "errors", "saturated"]
    png = base64.b64decode(evidence["chart_png_base64"])
    assert png.startswith(b"\x89PNG") and evidence["chart"]["md5"] == hashlib.md5(png).hexdigest()  # noqa: S324
    wecom = body["targets"]["wecom-ops"]["messages"]
    image = [m["body"]["image"] for m in wecom if m["body"]["msgtype"] == "image"]
    assert image and base64.b64decode(image[0]["base64"]) == png
    assert image[0]["md5"] == evidence["chart"]["md5"]
    dingtalk = body["targets"]["dingtalk-ops"]["messages"][0]["body"]["markdown"]["text"]
    assert "容量饱和" in dingtalk and "](https://relay.example.com/charts/" in dingtalk, dingtalk
    assert outbox.enrichment_jobs() == []  # a preview stores nothing
    plain = client.post("/api/v1/preview", headers=AUTH,
                        json={"route": "critical", "payload": notification(latency_alert()), "enrich": False})
    assert "evidence" not in plain.json()


def test_chart_links_are_signed_expiring_and_need_no_login(app):
    """A stored chart opens at its signed URL without a token; a wrong signature, an expired link or an
    unknown id is a 404."""
    client, outbox, _ = app()
    links = ChartLinks(b"relay-token", "https://relay.example.com")
    chart_id, expires = "ab" * 16, time.time() + 600
    client.post("/webhook/critical", json=notification(latency_alert()), headers=AUTH)
    [job] = outbox.enrichment_jobs()
    chart = StoredChart(chart_id, time.time(), expires, b"\x89PNG-x")
    assert outbox.store_evidence(job.notification_id, "{}", chart, None, time.time())
    path = links.path(chart_id, expires)
    ok = client.get(path)
    assert ok.status_code == 200 and ok.content == b"\x89PNG-x" and ok.headers["content-type"] == "image/png"
    assert client.get(path.replace("sig=", "sig=0")).status_code == 404
    assert client.get(links.path(chart_id, time.time() - 1)).status_code == 404
    assert client.get(links.path("cd" * 16, expires)).status_code == 404
    other = ChartLinks(b"another-token").path(chart_id, expires)
    assert client.get(other).status_code == 404
    assert outbox.chart(chart_id) == chart


@pytest.mark.parametrize("base", [None, "", "http://localhost:8080", "http://127.0.0.1:8080/", "http://[::1]:80"])
def test_no_link_under_a_base_the_chat_cannot_reach(base):
    """No public URL, or a loopback one (the stack's default), makes no absolute link at all."""
    assert ChartLinks(b"t", base).url("ab" * 16, time.time() + 60) is None
    assert ChartLinks(b"t", "https://relay.example.com/").url("ab" * 16, 10.0).startswith(
        "https://relay.example.com/charts/abababababababababababababababab.png?exp=10&sig=")
