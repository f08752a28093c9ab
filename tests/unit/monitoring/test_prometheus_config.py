"""Static checks of prometheus/prometheus.yml against the stack's contract."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.monitoring import PROMETHEUS_DIR


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))


def _job(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(job for job in config["scrape_configs"] if job["job_name"] == name)


def test_scrape_and_evaluation_every_15s_with_external_labels(config: dict[str, Any]) -> None:
    """Scrape and rule evaluation run every 15 s and alerts carry external labels."""
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    assert config["global"]["external_labels"]


def test_ofa_ve_found_by_dns_so_scaled_replicas_are_scraped(config: dict[str, Any]) -> None:
    """ofa-ve is discovered through DNS A records on port 8000, not a static target."""
    job = _job(config, "ofa-ve")
    assert "static_configs" not in job
    assert job["dns_sd_configs"] == [
        {"names": ["ofa-ve"], "type": "A", "port": 8000, "refresh_interval": "15s"}
    ]


@pytest.mark.parametrize(
    ("job", "target"),
    [
        ("webhook-relay", "webhook-relay:8080"),
        ("alertmanager", "alertmanager:9093"),
        ("prometheus", "localhost:9090"),
        ("victoriametrics", "victoriametrics:8428"),
        ("metrics-snapshot", "metrics-snapshot:9109"),
    ],
)
def test_static_jobs_use_in_stack_hostnames(config: dict[str, Any], job: str, target: str) -> None:
    """The other jobs scrape the compose service names of the contract."""
    assert _job(config, job)["static_configs"] == [{"targets": [target]}]


def test_every_job_labels_its_series_with_service(config: dict[str, Any]) -> None:
    """Each job copies its name into the `service` label that rules and alerts group by."""
    for job in config["scrape_configs"]:
        assert {"source_labels": ["job"], "target_label": "service"} in job["relabel_configs"], job[
            "job_name"
        ]


def test_alerts_go_to_alertmanager_and_rule_globs_find_files(config: dict[str, Any]) -> None:
    """Alerts are sent to alertmanager:9093 and each rule glob matches at least one file."""
    assert config["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]
    for pattern in config["rule_files"]:
        assert list(PROMETHEUS_DIR.glob(pattern)), pattern


def test_every_sample_is_remote_written_to_victoriametrics(config: dict[str, Any]) -> None:
    """One remote_write to the stack's VictoriaMetrics, unfiltered (the dashboards read raw series there too),
    with a queue sized for a single node: a request per 2,000 samples, a few shards, a buffer of several
    requests."""
    (target,) = config["remote_write"]
    assert target["url"] == "http://victoriametrics:8428/api/v1/write"
    assert "write_relabel_configs" not in target
    queue = target["queue_config"]
    assert queue["max_samples_per_send"] == 2000
    assert 1 <= queue["min_shards"] <= queue["max_shards"] <= 10
    assert 3 * queue["max_samples_per_send"] <= queue["capacity"] <= 10 * queue["max_samples_per_send"]


def test_the_drills_run_without_remote_write_or_jobs_of_services_they_do_not_start(
    config: dict[str, Any],
) -> None:
    """The drills' derived prometheus.yml drops remote_write and the static jobs they have no process for."""
    from tests.drills.compression import Compression

    addresses = {"webhook-relay:8080": "127.0.0.1:1", "alertmanager:9093": "127.0.0.1:2",
                 "localhost:9090": "127.0.0.1:3"}
    derived = Compression(factor=60).prometheus(
        config, addresses=addresses, ofa_ve_targets_file=PROMETHEUS_DIR / "x.json", rule_files=[]
    )
    assert "remote_write" not in derived
    assert [job["job_name"] for job in derived["scrape_configs"]] == [
        "ofa-ve", "webhook-relay", "alertmanager", "prometheus"
    ]
    assert "remote_write" in config  # the committed file is left alone


def test_exemplar_storage_is_sized_and_switched_on_in_compose(config: dict[str, Any]) -> None:
    """prometheus.yml sizes the exemplar ring and compose starts Prometheus with exemplar storage on."""
    assert config["storage"]["exemplars"]["max_exemplars"] >= 10_000
    compose = yaml.safe_load((PROMETHEUS_DIR.parent / "docker-compose.yml").read_text(encoding="utf-8"))
    assert "--enable-feature=exemplar-storage" in compose["services"]["prometheus"]["command"]
