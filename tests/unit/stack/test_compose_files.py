"""Static checks of the compose files and .env.example: the rules every service of the stack follows."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.support.env import ROOT


class _ComposeLoader(yaml.SafeLoader):
    """YAML loader that understands Compose's merge tags (`!reset`, `!override`)."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.MappingNode):
        value: Any = loader.construct_mapping(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_scalar(node)  # type: ignore[arg-type]
    return {"tag": node.tag, "value": value}


_ComposeLoader.add_constructor("!reset", _tagged)
_ComposeLoader.add_constructor("!override", _tagged)


def _load(name: str) -> dict[str, Any]:
    return yaml.load((ROOT / name).read_text(encoding="utf-8"), Loader=_ComposeLoader)  # noqa: S506


BASE = _load("docker-compose.yml")
SERVICES: dict[str, dict[str, Any]] = BASE["services"]
PUBLIC = {"ofa-ve", "grafana"}  # the UI/API and Grafana: the only services on ${BIND_ADDR}
ONE_SHOT = {"init"}  # runs at each `up`, writes the secrets, exits: no healthcheck, no restart, no network
LONG_RUNNING = sorted(set(SERVICES) - ONE_SHOT)


def _pinned_version(variable: str) -> str:
    text = (ROOT / "scripts" / "provision-tools.sh").read_text(encoding="utf-8")
    match = re.search(rf"^{variable}=(\S+)$", text, re.MULTILINE)
    assert match, f"{variable} not set in scripts/provision-tools.sh"
    return match.group(1)


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_every_service_has_healthcheck_restart_policy_log_rotation_and_the_one_network(name: str) -> None:
    """Each service has a healthcheck, restarts unless stopped, rotates logs, joins the one network."""
    service = SERVICES[name]
    assert service["healthcheck"]["test"][0] == "CMD"
    assert service["restart"] == "unless-stopped"
    assert service["logging"]["driver"] == "json-file"
    assert {"max-size", "max-file"} <= set(service["logging"]["options"])
    assert service["networks"] == ["monitoring"]
    # A fixed container_name would keep two test stacks (or --scale) from running side by side.
    assert "container_name" not in service


def test_prometheus_and_alertmanager_images_are_the_versions_the_tests_run() -> None:
    """The pinned image tags equal the binary versions scripts/provision-tools.sh gives the tests."""
    assert SERVICES["prometheus"]["image"] == f"prom/prometheus:v{_pinned_version('PROMETHEUS_VERSION')}"
    alertmanager = _pinned_version("ALERTMANAGER_VERSION")
    assert SERVICES["alertmanager"]["image"] == f"prom/alertmanager:v{alertmanager}"
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", SERVICES["grafana"]["image"])


def test_victoriametrics_image_is_the_version_the_tests_run() -> None:
    """The VictoriaMetrics tag equals the Debian build provision-tools.sh gives the tests and the stand-in
    provision-docker.sh builds."""
    version = _pinned_version("VICTORIAMETRICS_VERSION")
    assert SERVICES["victoriametrics"]["image"] == f"victoriametrics/victoria-metrics:v{version}"
    docker = (ROOT / "scripts" / "provision-docker.sh").read_text(encoding="utf-8")
    assert f"VM_VERSION=v{version}\n" in docker


def test_victoriametrics_keeps_a_year_on_its_own_volume() -> None:
    """Retention defaults to 12 months through VM_RETENTION, and the data lives on a named volume."""
    vm = SERVICES["victoriametrics"]
    assert "-retentionPeriod=${VM_RETENTION:-12}" in vm["command"]
    assert "-storageDataPath=/victoria-metrics-data" in vm["command"]
    assert "victoriametrics-data:/victoria-metrics-data" in vm["volumes"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_configs_are_mounted_read_only_and_data_lives_on_named_volumes(name: str) -> None:
    """Bind mounts from the repository are read-only; every other mount is a declared named volume."""
    for mount in SERVICES[name].get("volumes", []):
        source = mount.split(":", 1)[0]
        if source.startswith("./"):
            assert mount.endswith(":ro"), mount
        else:
            assert source in BASE["volumes"], mount


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_only_the_ui_api_and_grafana_are_published_on_bind_addr(name: str) -> None:
    """UI/API and Grafana on ${BIND_ADDR}; Prometheus, Alertmanager, the relay and VictoriaMetrics on loopback
    by default; nothing else published."""
    ports = SERVICES[name].get("ports", [])
    if name in PUBLIC:
        assert ports and all(p.startswith("${BIND_ADDR:-127.0.0.1}:") for p in ports), ports
    elif name in {"prometheus", "alertmanager", "webhook-relay", "victoriametrics"}:
        variable = {"webhook-relay": "RELAY"}.get(name, name.upper())
        prefix = f"${{{variable}_BIND_ADDR:-127.0.0.1}}:"
        assert ports and all(p.startswith(prefix) for p in ports), ports
    else:
        assert ports == [], ports


def test_the_one_shot_init_writes_secrets_offline_and_logs_rotated() -> None:
    """init: the pinned Python image, no network, no restart, its script mounted read-only, both secret
    volumes, .env's overrides as a file; whoever reads a secret waits for it to finish successfully."""
    init = SERVICES["init"]
    assert init["image"] == "python:3.11-slim-bookworm" and init["restart"] == "no"
    assert init["network_mode"] == "none" and "ports" not in init and "healthcheck" not in init
    assert init["entrypoint"] == ["python", "/init/init_secrets.py"]
    assert set(init["volumes"]) == {"./init:/init:ro", "relay-secrets:/secrets/relay",
                                    "grafana-secrets:/secrets/grafana"}
    assert init["configs"] == [{"source": "secret-overrides", "target": "/run/init/overrides.env"}]
    assert init["logging"]["driver"] == "json-file"
    for reader in ("webhook-relay", "grafana"):
        assert SERVICES[reader]["depends_on"]["init"] == {"condition": "service_completed_successfully"}


def test_no_secret_is_an_environment_variable_and_grafana_has_no_default_password() -> None:
    """Secrets travel as files (init's volumes, Compose configs), so `docker inspect` shows none; Grafana
    reads its admin password from a file, has no sign-up and no anonymous use; nothing requires .env."""
    secret_variables = {"RELAY_AUTH_TOKEN", "GRAFANA_ADMIN_PASSWORD", "DINGTALK_ACCESS_TOKEN",
                        "DINGTALK_SECRET", "WECOM_KEY", "FEISHU_TOKEN", "FEISHU_SECRET", "SMTP_PASSWORD",
                        "HEARTBEAT_URL", "ANALYSIS_LLM_API_KEY"}
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            assert key not in secret_variables, (name, key)
            for variable in secret_variables:
                # Only `${VAR:+set}` markers (whether a secret is set, never its value) may name them.
                text = str(value)
                assert f"${{{variable}}}" not in text and f"${{{variable}:-" not in text, (name, key)
    grafana = SERVICES["grafana"]["environment"]
    assert "GF_SECURITY_ADMIN_PASSWORD" not in grafana
    assert grafana["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/grafana-secrets/admin_password"
    assert "grafana-secrets:/run/grafana-secrets:ro" in SERVICES["grafana"]["volumes"]
    assert grafana["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    relay = SERVICES["webhook-relay"]
    assert relay["environment"]["RELAY_AUTH_TOKEN_FILE"] == "/run/relay-secrets/relay_token"
    assert relay["environment"]["WEBHOOK_RELAY_ENV_FILE"] == "/run/relay-config/credentials.env"
    assert "relay-secrets:/run/relay-secrets:ro" in relay["volumes"]
    assert "relay-secrets:/etc/alertmanager/secrets:ro" in SERVICES["alertmanager"]["volumes"]
    credentials = BASE["configs"]["relay-credentials"]["content"]
    for variable in secret_variables - {"RELAY_AUTH_TOKEN", "GRAFANA_ADMIN_PASSWORD"}:
        assert f"{variable}=${{{variable}:-}}" in credentials
    overrides = BASE["configs"]["secret-overrides"]["content"]
    assert "RELAY_AUTH_TOKEN=${RELAY_AUTH_TOKEN:-}" in overrides
    assert "GRAFANA_ADMIN_PASSWORD=${GRAFANA_ADMIN_PASSWORD:-}" in overrides
    for name in ("docker-compose.yml", "docker-compose.cpu.yml"):
        assert ":?" not in (ROOT / name).read_text(encoding="utf-8"), f"{name} requires a variable"


def test_alertmanager_reads_the_relay_token_from_inits_volume() -> None:
    """Alertmanager's credentials_file is the file init writes into relay-secrets."""
    am = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text(encoding="utf-8"))
    files = {hook["http_config"]["authorization"]["credentials_file"]
             for receiver in am["receivers"] for hook in receiver.get("webhook_configs", [])}
    assert files == {"/etc/alertmanager/secrets/relay_token"}


def test_order_matters_only_through_healthy_dependencies() -> None:
    """Every depends_on waits for the dependency to be healthy (or, for init, to have finished)."""
    for name, service in SERVICES.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in SERVICES, (name, dependency)
            wanted = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition == {"condition": wanted}, (name, dependency)


def test_gpu_is_reserved_and_the_cpu_override_removes_the_reservation() -> None:
    """The base file reserves an NVIDIA GPU for ofa-ve; docker-compose.cpu.yml drops it and forces CPU."""
    deploy = SERVICES["ofa-ve"]["deploy"]
    devices = deploy["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    cpu = _load("docker-compose.cpu.yml")["services"]["ofa-ve"]
    assert cpu["deploy"]["tag"] == "!override"
    assert "resources" not in cpu["deploy"]["value"]
    # The replica count survives the override: the same variable sets it in both files.
    assert cpu["deploy"]["value"]["replicas"] == deploy["replicas"] == "${OFA_VE_REPLICAS:-1}"
    assert cpu["environment"]["OFA_VE_DEVICE"] == "cpu"


def test_replicas_find_each_other_for_request_details() -> None:
    """Every replica is told the DNS name that resolves to all replicas (the name Prometheus discovers)."""
    assert SERVICES["ofa-ve"]["environment"]["OFA_VE_PEER_DNS"] == "ofa-ve"


def test_the_replica_count_and_the_expected_count_come_from_one_variable() -> None:
    """The replicas compose starts are the replicas the alert expects: both read OFA_VE_REPLICAS."""
    ofa = SERVICES["ofa-ve"]
    assert ofa["deploy"]["replicas"] == "${OFA_VE_REPLICAS:-1}"
    assert ofa["environment"]["OFA_VE_EXPECTED_REPLICAS"] == "${OFA_VE_REPLICAS:-1}"


def test_env_example_documents_every_variable_the_compose_files_use() -> None:
    """Each ${VAR} of the compose files has a line in .env.example, right under a comment."""
    used = set()
    for name in ("docker-compose.yml", "docker-compose.cpu.yml"):
        used |= set(re.findall(r"\$\{(\w+)", (ROOT / name).read_text(encoding="utf-8")))
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    documented = {}
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            documented[line.split("=", 1)[0]] = index
    assert sorted(used - documented.keys()) == []
    for variable, index in documented.items():
        above = next(line for line in reversed(lines[:index]) if not re.match(r"^[A-Z][A-Z0-9_]*=", line))
        assert above.startswith("#"), f"{variable} in .env.example has no comment above it"


def test_victoriametrics_and_the_snapshot_service_start_by_default() -> None:
    """Neither is behind a profile (`docker compose up` runs both); the snapshot service waits for VM."""
    for name in ("victoriametrics", "metrics-snapshot"):
        assert "profiles" not in SERVICES[name], name
    assert SERVICES["metrics-snapshot"]["depends_on"] == {"victoriametrics": {"condition": "service_healthy"}}


def test_the_snapshot_service_reads_victoriametrics_and_writes_its_own_volume() -> None:
    """It queries VM by its compose name, mounts VM's data (for vmbackup) and keeps days on `snapshots`."""
    from metrics_snapshot.settings import Settings

    snapshot = SERVICES["metrics-snapshot"]
    env = snapshot["environment"]
    assert env["SNAPSHOT_URL"] == "http://victoriametrics:8428"
    assert (env["SNAPSHOT_AT"], env["TZ"], env["SNAPSHOT_KEEP_DAYS"]) == (
        "${SNAPSHOT_AT:-03:00}", "${TZ:-Asia/Shanghai}", "${SNAPSHOT_KEEP_DAYS:-90}")
    data = f"victoriametrics-data:{env['SNAPSHOT_VM_DATA_PATH']}"
    assert set(snapshot["volumes"]) == {"snapshots:/snapshots", data}
    assert Settings().dir.as_posix() == "/snapshots"


def test_the_snapshot_port_is_the_same_everywhere() -> None:
    """The service's default listen port is the one its healthchecks and Prometheus' scrape target use."""
    from metrics_snapshot.settings import Settings

    port = Settings().listen.rsplit(":", 1)[1]
    assert f"127.0.0.1:{port}/-/healthy" in " ".join(SERVICES["metrics-snapshot"]["healthcheck"]["test"])
    dockerfile = (ROOT / "tools/metrics-snapshot/Dockerfile").read_text(encoding="utf-8")
    assert f"127.0.0.1:{port}/-/healthy" in dockerfile
    prometheus = (ROOT / "prometheus/prometheus.yml").read_text(encoding="utf-8")
    assert f'"metrics-snapshot:{port}"' in prometheus


def test_the_snapshot_image_carries_vmbackup_of_the_pinned_version() -> None:
    """vmbackup and vmrestore come from the official images of the VictoriaMetrics version the stack runs."""
    version = _pinned_version("VICTORIAMETRICS_VERSION")
    dockerfile = (ROOT / "tools/metrics-snapshot/Dockerfile").read_text(encoding="utf-8")
    assert f"FROM victoriametrics/vmbackup:v{version} AS vmbackup" in dockerfile
    assert f"FROM victoriametrics/vmrestore:v{version} AS vmrestore" in dockerfile


def test_the_snapshot_rule_interval_is_prometheus_evaluation_interval() -> None:
    """Counts integrate the recorded rates over their samples: the step is the evaluation interval."""
    from metrics_snapshot.settings import Settings

    config = yaml.safe_load((ROOT / "prometheus/prometheus.yml").read_text(encoding="utf-8"))
    assert f"{Settings().rule_interval_s:g}s" == config["global"]["evaluation_interval"]
