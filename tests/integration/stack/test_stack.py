"""End to end, in containers: the real compose stack (CPU override, tiny model, fake chat robots), brought
up as from a fresh clone (no .env: generated secrets).

The tests share one stack and run in file order; each states its own expectations and waits with a
bound for the asynchronous effect it checks (scrapes, rule evaluations, notifications, retries).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from tests.integration.stack.dashboards import DashboardCoverage, dashboard_queries, needs_gpu
from tests.integration.stack.fakechat_client import ChatMessage, FakeChatClient
from tests.integration.stack.robots import PING_TOKEN, RELAY_PUBLIC_URL, ROBOTS
from tests.integration.stack.stack import Stack, wait_for
from tests.integration.stack.traffic import drive_traffic, png_image
from tests.support.env import ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.docker,
    # The first test also pays for the image builds and the stack's start.
    pytest.mark.timeout(2400),
]

SERVICES = {"ofa-ve", "webhook-relay", "alertmanager", "prometheus", "victoriametrics", "metrics-snapshot",
            "fakechat"}
JOBS = {"ofa-ve", "webhook-relay", "alertmanager", "prometheus", "victoriametrics", "metrics-snapshot"}
# The snapshot service's zone in compose (TZ defaults to Asia/Shanghai): "today" there.
SNAPSHOT_ZONE = ZoneInfo("Asia/Shanghai")
DAY_FILES = {"requests.csv", "latency.csv", "stages.csv", "errors.csv", "load.csv", "gpu.csv",
             "snapshot.json", "report.html", "manifest.json"}
RELAY_CONFIG = yaml.safe_load((ROOT / "webhook-relay" / "config.yml").read_text(encoding="utf-8"))


def _alert_rules() -> set[str]:
    from tests.support.promql import rules

    return {rule["alert"] for rule in rules(ROOT) if "alert" in rule}


@pytest.fixture(scope="module")
def coverage() -> DashboardCoverage:
    """Dashboard queries (GPU panels aside: this stack has no GPU) not yet seen returning data."""
    queries = [q for q in dashboard_queries(ROOT / "grafana" / "dashboards") if not needs_gpu(q.expr)]
    assert queries, "no dashboard queries found"
    return DashboardCoverage(queries)


def _chat(stack: Stack) -> FakeChatClient:
    return FakeChatClient(stack.url("fakechat", 9000))


def _relay_metric(stack: Stack, name: str, **labels: str) -> float:
    return stack.relay_metric(name, **labels)


def _with(messages: list[ChatMessage], *needles: str) -> list[ChatMessage]:
    return [m for m in messages if all(n in m.title + "\n" + m.text for n in needles)]


def test_every_service_but_grafana_comes_up_healthy(stack: Stack) -> None:
    """`docker compose up --wait` leaves every service of the stack (Grafana aside) healthy."""
    assert stack.health() == dict.fromkeys(SERVICES, "healthy")


def test_secrets_are_generated_at_first_start_and_kept_out_of_the_environment(stack: Stack) -> None:
    """With no .env, init generated the relay token and Grafana's password, said so and how to read
    them (without printing them); Alertmanager and the relay share the token through a file, and no
    container's environment holds a token, key or password."""
    logs = stack.run("logs", "--no-log-prefix", "init")
    assert "relay bearer token (Alertmanager -> relay, and the /inbox password): generated" in logs
    assert "Grafana admin password: generated" in logs and "make secrets" in logs
    token, password = stack.secret("relay_token"), stack.secret("grafana_admin_password")
    assert len(token) >= 40 and len(password) >= 40 and token not in logs and password not in logs
    shared = stack.run("exec", "-T", "alertmanager", "cat", "/etc/alertmanager/secrets/relay_token")
    assert shared.strip() == token
    inbox = httpx.get(f"{stack.url('webhook-relay', 8080)}/inbox", auth=("admin", token), timeout=10)
    assert inbox.status_code == 200
    assert httpx.get(f"{stack.url('webhook-relay', 8080)}/inbox", timeout=10).status_code == 401
    for service in ("webhook-relay", "alertmanager", "prometheus", "ofa-ve"):
        env = stack.run("exec", "-T", service, "env")
        for secret in (token, password, "e2e-dingtalk-token", "e2e-wecom-key", "e2e-feishu-token",
                       PING_TOKEN):
            assert secret not in env, (service, secret[:6])


def test_the_relay_says_which_channels_are_live(stack: Stack) -> None:
    """One start-up line names the robots the fake chat stands for and the inbox; email is left out."""
    [line] = [r for r in stack.log_records("webhook-relay") if r.get("msg", "").startswith("channels:")]
    assert line["targets"] == {**ROBOTS, "inbox": "inbox"} and line["disabled"] == ["email-ops"]


def test_prometheus_scrapes_every_target(stack: Stack) -> None:
    """Prometheus discovers every job of its config (ofa-ve through DNS) and reports each target up."""

    def all_up() -> dict[str, str]:
        targets = httpx.get(f"{stack.url('prometheus', 9090)}/api/v1/targets", timeout=10).json()
        health = {t["labels"]["job"]: t["health"] for t in targets["data"]["activeTargets"]}
        return health if health == dict.fromkeys(JOBS, "up") else {}

    health = wait_for(all_up, "every Prometheus target up", timeout=90)
    assert set(health) == JOBS
    assert {r["metric"]["service"] for r in stack.query("up == 1")} == JOBS


def test_watchdog_feeds_the_external_heartbeat_and_posts_nothing(stack: Stack) -> None:
    """Watchdog goes Prometheus -> Alertmanager -> relay -> the push monitor, never to a chat."""
    assert RELAY_CONFIG["routes"]["watchdog"]["targets"] == []
    chat = _chat(stack)
    pings = wait_for(lambda: len(chat.pings(PING_TOKEN)) >= 2, "two heartbeat pings at the push monitor",
                     timeout=240)
    assert pings
    assert _with(chat.messages(), "Watchdog") == []
    assert _relay_metric(stack, "webhook_relay_heartbeat_forwards_total", route="watchdog", result="ok") >= 2


def test_the_relay_serves_the_runbook_every_alert_links_to(stack: Stack) -> None:
    """GET /runbook on the relay renders runbook.md with one anchor per alert section."""
    page = httpx.get(f"{stack.url('webhook-relay', 8080)}/runbook", timeout=10)
    assert page.status_code == 200
    for rule in _alert_rules():
        assert f'id="{rule.lower()}"' in page.text, rule


LATENCY_EXPR = ('instance_endpoint_quantile:ofa_ve_request_duration_seconds:histogram_quantile'
                '{endpoint="entailment",quantile="0.95"} > 2')


def _post_drill_alert(stack: Stack, name: str, instance: str, marker: str) -> None:
    """A firing ofa-ve alert on `instance`, as a rule would raise it (with its generatorURL)."""
    alert = {"labels": {"alertname": name, "severity": "warning", "service": "ofa-ve", "instance": instance},
             "annotations": {"summary": f"drill {marker}", "summary_zh": f"演练 {marker}"},
             "startsAt": datetime.now(UTC).isoformat(),
             "generatorURL": "http://localhost:9090/graph?g0.expr=" + quote(LATENCY_EXPR)}
    reply = httpx.post(f"{stack.url('alertmanager', 9093)}/api/v2/alerts", json=[alert], timeout=10)
    reply.raise_for_status()


def _post_alerts(stack: Stack, names: list[str], summary: str) -> None:
    now = datetime.now(UTC).isoformat()
    alerts = [
        {"labels": {"alertname": n, "severity": "warning", "service": "e2e"},
         "annotations": {"summary": summary}, "startsAt": now}
        for n in names
    ]
    httpx.post(f"{stack.url('alertmanager', 9093)}/api/v2/alerts", json=alerts, timeout=10).raise_for_status()


def test_relay_restart_loses_no_pending_alert(stack: Stack, coverage: DashboardCoverage) -> None:
    """Alerts accepted while the chat APIs fail and still pending at a relay restart all arrive afterwards."""
    chat = _chat(stack)
    chat.fail_everything()
    marker = uuid.uuid4().hex[:12]
    names = [f"E2eRelayRestart{i}" for i in range(3)]
    _post_alerts(stack, names, f"relay restart check {marker}")
    targets = list(ROBOTS)
    assert set(targets) <= set(RELAY_CONFIG["routes"]["warning"]["targets"])
    wait_for(
        lambda: all(_relay_metric(stack, "webhook_relay_outbox_pending", target=t) >= len(names)
                    for t in targets),
        "the relay to hold the alerts as pending", timeout=60,
    )
    coverage.check(stack.query)  # delivery-failure and retry panels have data only now
    stack.run("restart", "webhook-relay")
    chat.reset()  # the chat APIs recover; the relay's retries must now deliver everything it held

    channels = {ROBOTS[t] for t in targets}

    def delivered() -> bool:
        got = _with(chat.messages(), marker)
        return all(_with([m for m in got if m.channel == c], n) for c in channels for n in names)

    wait_for(delivered, f"{names} at {sorted(channels)} after the restart", timeout=120)


def test_stopping_ofa_ve_fires_service_down_and_starting_resolves(
    stack: Stack, coverage: DashboardCoverage
) -> None:
    """Stopping the ofa-ve container sends a firing service-down message; starting it, the resolved one."""
    chat = _chat(stack)
    chat.reset()
    down_alerts = ("ServiceDown", "OfaVeNoReplicas")

    def dingtalk_titled(prefix: str) -> list[ChatMessage]:
        return [
            m for m in chat.messages("dingtalk")
            if m.title.startswith(prefix) and m.title.endswith(down_alerts)
        ]

    stack.run("stop", "ofa-ve")
    firing = wait_for(lambda: dingtalk_titled("[FIRING"), "a firing service-down message", timeout=150)
    alertname = firing[0].title.rsplit(" ", 1)[1]
    coverage.check(stack.query)  # a non-Watchdog alert is firing
    assert wait_for(lambda: _with(chat.messages("wecom"), alertname), "WeCom's service-down message", 30)
    assert wait_for(lambda: _with(chat.messages("feishu"), alertname), "Feishu's service-down message", 30)
    # Every DingTalk and Feishu request was signed: the fake refuses a bad signature (310000, 19021).
    assert [r for r in chat.rejected() if r.get("errcode") in (310000, 19021)] == []
    # One language per message: the Chinese chats read the alert's Chinese texts, not its English ones.
    assert "**摘要**：" in firing[0].text and "Prometheus has failed" not in firing[0].text
    assert "No ofa-ve replica is discovered" not in firing[0].text

    # Links are this deployment's: the runbook on the relay's public URL, Grafana under its root URL.
    anchor = alertname.lower()
    assert f"({RELAY_PUBLIC_URL}/runbook#{anchor})" in firing[0].text
    assert "(http://localhost:3000/d/ofa-ve-overview" in firing[0].text
    stack.run("start", "ofa-ve")
    resolved = wait_for(lambda: dingtalk_titled("[RESOLVED"), "a resolved service-down message", timeout=240)
    assert resolved[0].title.endswith(alertname)


def _snapshot_today(stack: Stack) -> str:
    """Run `metrics-snapshot run --day <today>` in its container (queries, files, vmbackup); the day."""
    day = datetime.now(SNAPSHOT_ZONE).date().isoformat()
    stack.run("exec", "-T", "metrics-snapshot", "metrics-snapshot", "run", "--day", day, timeout=300)
    return day


def test_the_snapshot_service_exports_and_backs_up_inside_the_stack(stack: Stack) -> None:
    """In its container the command reads VictoriaMetrics, writes the day's files and backs up
    VictoriaMetrics' volume with vmbackup; the scraped metrics then show a complete day and nothing owed."""
    day = _snapshot_today(stack)
    files = set(stack.run("exec", "-T", "metrics-snapshot", "ls", f"/snapshots/{day}").split())
    assert files == DAY_FILES
    backup = set(stack.run("exec", "-T", "metrics-snapshot", "ls", "/snapshots/vmbackup").split())
    assert {"backup_complete.ignore", "data", "indexdb"} <= backup
    manifest = json.loads(stack.run("exec", "-T", "metrics-snapshot", "cat",
                                    f"/snapshots/{day}/manifest.json"))
    assert manifest["complete"] is True and manifest["backup"]["bytes"] > 0
    wait_for(lambda: stack.query("metrics_snapshot_backup_bytes > 0"), "the backup size scraped", timeout=60)
    assert [float(r["value"][1]) for r in stack.query("metrics_snapshot_days_behind")] == [0.0]


def test_dashboard_queries_return_data_after_real_traffic(stack: Stack, coverage: DashboardCoverage) -> None:
    """After real requests and a dead-lettered message, every query of every dashboard has returned data."""
    wait_for(lambda: httpx.get(f"{stack.url('ofa-ve', 8000)}/readyz", timeout=5).status_code == 200,
             "ofa-ve ready", timeout=120)
    drive_traffic(stack.url("ofa-ve", 8000))
    chat = _chat(stack)
    chat.reset()
    # One refusal a chat API means for good (HTTP 400) puts a message in the relay's dead letters.
    chat.fail_next(status=400)
    _post_alerts(stack, ["E2eDeadLetter"], "dead letter check")
    wait_for(
        lambda: sum(_relay_metric(stack, "webhook_relay_dead_letters", target=t) for t in ROBOTS),
        "a dead letter", timeout=60,
    )
    # Rates need two scrapes after the traffic, recording rules one evaluation more.
    deadline = time.monotonic() + 90
    coverage.check(stack.query)
    while coverage.missing() and time.monotonic() < deadline:
        time.sleep(3)
        coverage.check(stack.query)
    missing = coverage.missing()
    assert missing == [], "dashboard queries that never returned data:\n" + "\n".join(missing)


def _vm_query(stack: Stack, promql: str, at: float) -> list[dict]:
    url = f"{stack.url('victoriametrics', 8428)}/api/v1/query"
    reply = httpx.post(url, data={"query": promql, "time": at}, timeout=15).json()
    assert reply["status"] == "success", reply
    return reply["data"]["result"]


def _by_labels(result: list[dict]) -> dict[str, float]:
    return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in result}


# The same query on both datasources, with a relative tolerance: raw and recorded samples are the very
# samples Prometheus stored, so they match (the quantile up to float rounding). rate() is left out on
# purpose: VictoriaMetrics computes it differently around a series' start (docs/long-term-storage.md),
# and right after the stack starts the two differ by several times.
SAME_ANSWERS = {
    "count(up)": 0.0,
    "sum by (endpoint, result) (ofa_ve_requests_total)": 1e-9,
    "sum by (result) (instance_result:ofa_ve_requests:rate5m)": 1e-9,
    "sum by (revision) (instance_revision_endpoint_le:ofa_ve_request_duration_seconds_bucket:rate5m)": 1e-9,
    "histogram_quantile(0.95, sum by (le) (ofa_ve_request_duration_seconds_bucket))": 1e-6,
}


def test_remote_write_reaches_victoriametrics_with_the_same_answers(stack: Stack) -> None:
    """Every sample Prometheus stores reaches VictoriaMetrics: the same queries at the same past moment give
    the same answers from both datasources (within the tolerance of each)."""
    def both(promql: str) -> tuple[dict[str, float], dict[str, float]]:
        at = time.time() - 60  # past VictoriaMetrics' 30 s latency offset and remote write's 5 s batches
        ours, theirs = _by_labels(stack.query(promql, at=at)), _by_labels(_vm_query(stack, promql, at))
        if ours and set(ours) == set(theirs):
            return ours, theirs
        raise AssertionError(f"at {at:.0f}: Prometheus {ours}, VictoriaMetrics {theirs}")

    for promql, tolerance in SAME_ANSWERS.items():
        prometheus, victoriametrics = wait_for(lambda q=promql: both(q), promql, timeout=60)
        for labels, value in prometheus.items():
            assert math.isclose(victoriametrics[labels], value, rel_tol=tolerance, abs_tol=1e-9), (
                promql, labels, value, victoriametrics[labels])


def test_a_snapshot_after_traffic_attributes_requests_to_the_model_revision(stack: Stack) -> None:
    """The tiny model's requests reach the day's latency.csv under its model and revision, per replica:
    scrape, recording rules, the revision join, remote write, VictoriaMetrics, the export."""
    day = _snapshot_today(stack)
    text = stack.run("exec", "-T", "metrics-snapshot", "cat", f"/snapshots/{day}/latency.csv")
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["instance"] != "all" and r["requests"]]
    served = [r for r in rows if float(r["requests"]) > 0]
    assert served, text[:2000]
    assert {(r["model"], r["revision"]) for r in served} == {("/models/tiny", "local")}
    assert all(r["instance"].endswith(":8000") and r["p95_seconds"] for r in served)


def _kept_request(base_url: str, request_id: str) -> httpx.Response:
    """A request the service keeps in its request log whatever the sampling: a 4xx (blank text)."""
    image = base64.b64encode(png_image(48, (10, 200, 30))).decode()
    return httpx.post(f"{base_url}/v1/entailment", json={"image_base64": image, "text": "   "},
                      headers={"X-Request-ID": request_id}, timeout=30)


def test_an_exemplar_read_back_from_prometheus_opens_its_request_detail(stack: Stack) -> None:
    """A kept request's id is an exemplar of the latency histogram: Prometheus (exemplar storage on) returns
    it from query_exemplars, and the service's /v1/requests/{id} shows that request; its answer carried
    Server-Timing."""
    base = stack.url("ofa-ve", 8000)
    request_id = f"e2e-exemplar-{uuid.uuid4().hex[:12]}"
    answer = _kept_request(base, request_id)
    assert answer.status_code == 422, answer.text
    assert "total;dur=" in answer.headers["server-timing"]

    def exemplar_ids() -> set[str]:
        now = time.time()
        reply = httpx.get(f"{stack.url('prometheus', 9090)}/api/v1/query_exemplars", timeout=15, params={
            "query": 'ofa_ve_request_duration_seconds_bucket{job="ofa-ve", endpoint="entailment"}',
            "start": now - 600, "end": now + 5,
        }).json()
        ids = {e["labels"].get("request_id", "") for series in reply["data"] for e in series["exemplars"]}
        return ids if request_id in ids else set()

    wait_for(exemplar_ids, "the request's exemplar in Prometheus", timeout=60)
    detail = httpx.get(f"{base}/v1/requests/{request_id}", timeout=10)
    assert detail.status_code == 200, detail.text
    record = detail.json()
    assert (record["endpoint"], record["status_code"], record["error"]["code"]) == ("entailment", 422,
                                                                                  "empty_text")
    assert "client_error" in record["kept_as"]
    assert record["replica"]
    page = httpx.get(f"{base}/v1/requests/{request_id}", headers={"accept": "text/html"}, timeout=10)
    assert page.headers["content-type"].startswith("text/html") and request_id in page.text


def test_scaled_ofa_ve_replicas_are_each_scraped(stack: Stack) -> None:
    """`--scale ofa-ve=3` starts two more replicas, which Prometheus finds through DNS and scrapes."""
    stack.run("up", "--detach", "--wait", "--no-recreate", "--scale", "ofa-ve=3", "ofa-ve", timeout=400)
    wait_for(lambda: len(stack.query('up{job="ofa-ve"} == 1')) == 3, "three ofa-ve targets up", timeout=60)


def test_request_detail_is_found_through_any_replica(stack: Stack) -> None:
    """With three replicas, a request kept by one of them is shown by each (a replica that does not have
    it asks the others, found through the same DNS name Prometheus discovers)."""
    addresses = [stack.run("port", "--index", str(i), "ofa-ve", "8000").strip() for i in (1, 2, 3)]
    assert len(set(addresses)) == 3, addresses
    request_id = f"e2e-peers-{uuid.uuid4().hex[:12]}"
    assert _kept_request(f"http://{addresses[0]}", request_id).status_code == 422
    replicas = set()
    for address in addresses:
        detail = httpx.get(f"http://{address}/v1/requests/{request_id}", timeout=15)
        assert detail.status_code == 200, (address, detail.text)
        replicas.add(detail.json()["replica"])
    assert len(replicas) == 1  # the one replica that served it, whichever was asked


def test_an_ofa_ve_drill_alert_arrives_with_its_evidence_chart_and_analysis(stack: Stack) -> None:
    """A drill alert on a replica that served requests reaches the chats with the live numbers the real
    Prometheus holds for it and a diagnosis; DingTalk shows the chart by a signed link under
    RELAY_PUBLIC_URL (which opens, without a login, on the relay), WeCom gets it as an image message,
    Feishu as a link; the fake model, slower than the message deadline, follows with its analysis."""
    base = stack.url("ofa-ve", 8000)
    wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200, "ofa-ve ready", timeout=120)
    drive_traffic(base, rounds=2)
    rates = wait_for(lambda: stack.query('instance:ofa_ve_requests:rate5m{service="ofa-ve"} > 0'),
                     "a request rate recorded for a replica", timeout=60)
    instance = rates[0]["metric"]["instance"]
    chat = _chat(stack)
    chat.reset()
    chat.llm("slow", 4.0)
    marker = uuid.uuid4().hex[:12]
    _post_drill_alert(stack, "OfaVeEvidenceDrill", instance, marker)
    [dingtalk] = wait_for(lambda: _with(chat.messages("dingtalk"), marker), "the drill alert at DingTalk",
                          60)
    text = dingtalk.text
    assert f"#### 🔎 现场数据 · {instance}" in text and "**流量**：" in text, text
    assert "**模型**：版本" in text and "**诊断**" in text, text
    chart = rf"!\[近 1 小时图表\]\({re.escape(RELAY_PUBLIC_URL)}(/charts/[0-9a-f]{{32}}\.png\?[^)]+)\)"
    link = re.search(chart, text)
    assert link, text
    png = httpx.get(stack.url("webhook-relay", 8080) + link.group(1), timeout=10)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")

    def wecom_image() -> bool:
        # Other groups' messages (a late "resolved") may arrive too: the image follows the drill's text.
        bodies = chat.bodies("wecom")
        texts = [i for i, b in enumerate(bodies) if marker in b.get("markdown", {}).get("content", "")]
        return bool(texts) and texts[0] + 1 < len(bodies) and bodies[texts[0] + 1]["msgtype"] == "image"

    wait_for(wecom_image, "WeCom's text and chart image", 30)
    assert wait_for(lambda: [m for m in _with(chat.messages("feishu"), marker) if "📈" in m.text],
                    "Feishu's message with its chart link", 30)
    follow_up = wait_for(lambda: [m for m in chat.messages("dingtalk")
                                  if m.title == "AI 分析 ↩ [FIRING:1] OfaVeEvidenceDrill"],
                         "the analysis following the alert", 60)
    assert "fake-janus-pro-7b" in follow_up[0].text and "> 回复：" in follow_up[0].text, follow_up[0].text
    prompts = [str(r["body"]["messages"][1]["content"]) for r in chat.llm_requests()]
    asked = [p for p in prompts if "OfaVeEvidenceDrill" in p]
    assert len(asked) == 1 and instance in asked[0]
    assert _relay_metric(stack, "webhook_relay_enrichment_parts_total", part="errors", result="ok") >= 1


def test_prometheus_data_survives_a_prometheus_restart(stack: Stack) -> None:
    """Samples written before Prometheus' container is replaced (same named volume) are still there after."""
    at = time.time() - 10  # far enough back that no scrape in flight can still add a sample
    query = 'count_over_time(up{job="prometheus"}[1h])'
    before = stack.query(query, at=at)
    assert before, "no samples before the restart"
    # Recreated, not just restarted: only the named volume can carry the data over.
    stack.run("up", "--detach", "--wait", "--force-recreate", "--no-deps", "prometheus")
    after = wait_for(lambda: stack.query(query, at=at), "Prometheus to answer after its restart", timeout=120)
    assert after[0]["value"][1] == before[0]["value"][1]


def test_with_prometheus_and_the_model_down_the_alert_still_arrives_on_time(stack: Stack) -> None:
    """Prometheus stopped and the model failing: the drill alert still reaches DingTalk within
    Alertmanager's group wait plus the relay's 2 s deadline (and some slack), saying what is missing."""
    chat = _chat(stack)
    chat.reset()
    chat.llm("error")
    stack.run("stop", "prometheus")
    try:
        marker = uuid.uuid4().hex[:12]
        started = time.monotonic()
        _post_drill_alert(stack, "OfaVeEvidenceDown", "ofa-ve:8000", marker)
        [message] = wait_for(lambda: _with(chat.messages("dingtalk"), marker), "the plain alert", 30,
                             interval=0.25)
        took = time.monotonic() - started
        assert took < 1 + 2 + 5, took
        assert "⚠️ 证据不完整" in message.text and "prometheus:" in message.text, message.text
        assert "analysis: http_error" in message.text, message.text
    finally:
        chat.llm("good")
        stack.run("start", "prometheus")
