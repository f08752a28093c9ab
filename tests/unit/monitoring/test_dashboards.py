"""Static checks of the generated Grafana dashboards and their provisioning."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest
import yaml

from tests.support.env import ROOT
from tests.support.monitoring import DASHBOARD_DIR, GENERATOR, dashboards, links
from tests.support.promql import dashboard_expressions

BOARDS = dashboards()


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in board["panels"] if panel["type"] != "row"]


def _titles(board: dict[str, Any]) -> str:
    return "\n".join(panel["title"] for panel in _panels(board))


def test_committed_dashboards_equal_a_fresh_generation(tmp_path: Any) -> None:
    """Regenerating from scripts/dashgen gives exactly the committed JSON files (`make dashboards`)."""
    check = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    assert check.returncode == 0, check.stderr
    fresh = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert fresh.returncode == 0, fresh.stderr
    generated = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_text(encoding="utf-8") for p in DASHBOARD_DIR.glob("*.json")}
    assert generated == committed


def test_check_mode_reports_a_hand_edited_dashboard(tmp_path: Any) -> None:
    """`--check` fails when a dashboard file differs from the generated one."""
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path)], check=True, capture_output=True)
    edited = tmp_path / "ofa-ve-slo.json"
    edited.write_text(edited.read_text(encoding="utf-8").replace("OFA-VE SLO", "My SLO"), encoding="utf-8")
    check = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert check.returncode == 1
    assert "ofa-ve-slo.json" in check.stderr


def test_the_four_dashboards_have_distinct_fixed_uids() -> None:
    """Overview, SLO, alert-pipeline and metrics-history dashboards exist under the uids alerts link to."""
    urls = links()
    assert {board["uid"] for board in BOARDS.values()} == {
        urls.OVERVIEW_UID, urls.SLO_UID, urls.PIPELINE_UID, urls.HISTORY_UID}


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_query_reads_the_dashboards_datasource_variable(name: str) -> None:
    """Panels, queries, annotations and query variables name the `datasource` variable, never a uid or a
    ${DS_...} placeholder, so one switch moves the whole dashboard between Prometheus and VictoriaMetrics."""
    board = BOARDS[name]
    assert "${DS_" not in json.dumps(board)
    datasource = links().DATASOURCE
    assert datasource == {"type": "prometheus", "uid": "${datasource}"}
    for panel in _panels(board):
        assert panel["datasource"] == datasource, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == datasource, panel["title"]
    for annotation in board["annotations"]["list"]:
        if "expr" in annotation:
            assert annotation["datasource"] == datasource, annotation["name"]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"] == datasource, variable["name"]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_dashboard_offers_prometheus_and_victoriametrics(name: str) -> None:
    """The first variable picks any Prometheus-API datasource and starts on Prometheus (30 days)."""
    variable = BOARDS[name]["templating"]["list"][0]
    assert variable["name"] == links().DATASOURCE_VARIABLE and variable["type"] == "datasource"
    assert variable["query"] == "prometheus" and not variable["regex"]
    assert variable["current"]["value"] == links().PROMETHEUS_UID


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_panel_has_a_unit_and_a_query(name: str) -> None:
    """Each panel states the unit of what it shows and has at least one non-empty query."""
    for panel in _panels(BOARDS[name]):
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panel_ids_are_unique_and_panels_do_not_overlap(name: str) -> None:
    """Panel ids are unique and no two panels claim the same grid cell."""
    panels = BOARDS[name]["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        area = {
            (x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & area, panel["title"]
        cells |= area


# Overview panels about the service as a whole (one replica count per service): no instance filter.
SERVICE_LEVEL_PANELS = {"Replicas up / expected"}


def test_overview_has_instance_variable_and_every_query_filters_by_it() -> None:
    """The overview's `instance` variable lists ofa-ve targets; all but service-level panels filter by it."""
    board = BOARDS["ofa-ve-overview.json"]
    (variable,) = [v for v in board["templating"]["list"] if v["type"] == "query"]
    assert variable["name"] == "instance" and variable["includeAll"] and variable["multi"]
    assert variable["query"]["query"] == 'label_values(up{job="ofa-ve"}, instance)'
    titles = {panel["title"] for panel in _panels(board)}
    assert titles >= SERVICE_LEVEL_PANELS
    for panel in _panels(board):
        for target in panel["targets"]:
            if panel["title"] in SERVICE_LEVEL_PANELS:
                assert "$instance" not in target["expr"], panel["title"]
            else:
                assert '$instance"' in target["expr"], panel["title"]


def test_replica_panel_plots_the_recorded_series_the_alert_compares() -> None:
    """Replicas up / expected draws the recorded up count, its 5-minute low point and the expected count."""
    (panel,) = [p for p in _panels(BOARDS["ofa-ve-overview.json"]) if p["title"] == "Replicas up / expected"]
    exprs = "\n".join(t["expr"] for t in panel["targets"])
    assert "service:ofa_ve_replicas_up:count" in exprs
    assert "min_over_time(service:ofa_ve_replicas_up:count[5m])" in exprs
    assert "service:ofa_ve_replicas_expected:max" in exprs


def test_model_state_panel_names_every_state() -> None:
    """The model state stat maps its values to the names of ofa_ve_model_state's states."""
    from ofa_ve.loading import MODEL_STATES

    (panel,) = [p for p in _panels(BOARDS["ofa-ve-overview.json"]) if p["title"] == "Model state"]
    (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
    assert {option["text"] for option in mapping["options"].values()} == set(MODEL_STATES)
    assert "ofa_ve_model_state" in panel["targets"][0]["expr"]


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        (
            "ofa-ve-overview.json",
            ["by result", "P50 / P90 / P95 / P99", "error ratio", "Where the time goes", "In-flight", "Queue",
             "Rejected", "Batch size", "GPU memory", "GPU utilisation", "GPU temperature", "GPU power",
             "Replicas up / expected", "Model state", "Model load time", "heatmap",
             "Wait before the handler", "Event loop lag", "Admitted items / budget", "Admitted body bytes",
             "GPU out of memory and batch splits", "Device faults", "Errors by type and cause"],
        ),
        ("ofa-ve-slo.json", ["Availability: error budget remaining", "Availability: burn rate per window",
                             "Latency: error budget remaining", "Latency: burn rate per window"]),
        ("alert-pipeline.json", ["Alerts firing", "Notifications by integration", "Messages delivered",
                                 "Delivery failures", "Outbox pending", "Dead letters", "Targets failing",
                                 "Outbox writable", "Components up", "Task restarts", "Heartbeat forwards",
                                 "Notification queue", "Config reloads"]),
        ("metrics-history.json", ["Remote write lag", "Samples sent, retried, failed", "Rows ingested",
                                  "Disk", "Bytes per stored sample", "Days behind", "Newest complete day",
                                  "Backup size"]),
    ],
)  # fmt: skip
def test_dashboards_show_what_the_issue_asks_for(name: str, wanted: list[str]) -> None:
    """Each dashboard has the panels the issue lists."""
    titles = _titles(BOARDS[name]).lower()
    missing = [w for w in wanted if w.lower() not in titles]
    assert not missing


@pytest.mark.parametrize("title", ["Request latency P50 / P90 / P95 / P99", "P95 latency by endpoint",
                                   "Stage latency P95"])
def test_latency_panels_show_exemplars_of_the_scraped_histograms(title: str) -> None:
    """The latency panels ask for exemplars and read the scraped buckets: a recorded series has none."""
    (panel,) = [p for p in _panels(BOARDS["ofa-ve-overview.json"]) if p["title"] == title]
    for target in panel["targets"]:
        assert target["exemplar"] is True
        scraped = re.search(r"rate\(ofa_ve_(request|stage)_duration_seconds_bucket\{", target["expr"])
        assert scraped, target["expr"]


def test_latency_heatmap_reads_histogram_buckets() -> None:
    """The heatmap panel plots pre-bucketed `le` series instead of recalculating buckets."""
    (panel,) = [p for p in _panels(BOARDS["ofa-ve-overview.json"]) if p["type"] == "heatmap"]
    assert panel["options"]["calculate"] is False
    assert panel["targets"][0]["format"] == "heatmap"
    assert "ofa_ve_request_duration_seconds_bucket" in panel["targets"][0]["expr"]


def test_slo_burn_rate_panels_cover_every_recorded_window() -> None:
    """Every window recorded for an SLO is plotted as a burn rate."""
    recorded = {
        rule["record"]
        for group in yaml.safe_load((ROOT / "prometheus/rules/slo.rules.yml").read_text(encoding="utf-8"))[
            "groups"
        ]
        for rule in group["rules"]
    }
    plotted = "\n".join(expr for _, expr in dashboard_expressions(BOARDS["ofa-ve-slo.json"]))
    for name in recorded:
        if ":ratio_rate" in name:
            assert name in plotted, name


def test_grafana_provisioning_matches_the_dashboards() -> None:
    """The provisioned datasource has the uid dashboards use and the exemplar link to the request detail;
    the provider loads the mounted folder."""
    datasources = yaml.safe_load((ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["uid"] == links().PROMETHEUS_UID and source["type"] == "prometheus"
    assert source["isDefault"] is True
    assert source["url"] == "http://prometheus:9090"
    (link,) = source["jsonData"]["exemplarTraceIdDestinations"]
    # An exemplar's request_id opens ofa-ve's detail view; `$$` escapes Grafana's own env interpolation.
    assert link == {"name": "request_id", "url": "${OFA_VE_PUBLIC_URL}/v1/requests/$${__value.raw}",
                    "urlDisplayLabel": "Request detail"}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert "OFA_VE_PUBLIC_URL" in compose["services"]["grafana"]["environment"]
    providers = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/dashboards.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_victoriametrics_is_provisioned_as_a_second_prometheus_api_datasource() -> None:
    """VictoriaMetrics is a Prometheus-type datasource under its fixed uid at the compose service's address,
    with the same scrape interval so $__rate_interval means the same on both."""
    folder = ROOT / "grafana/provisioning/datasources"
    files = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in folder.glob("*.yml")]
    sources = {source["uid"]: source for doc in files for source in doc["datasources"]}
    assert set(sources) == {links().PROMETHEUS_UID, links().VICTORIAMETRICS_UID}
    vm = sources[links().VICTORIAMETRICS_UID]
    assert (vm["type"], vm["url"], vm["isDefault"]) == ("prometheus", "http://victoriametrics:8428", False)
    prometheus = sources[links().PROMETHEUS_UID]
    assert vm["jsonData"]["timeInterval"] == prometheus["jsonData"]["timeInterval"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert "8428" in compose["services"]["victoriametrics"]["command"][-1]
