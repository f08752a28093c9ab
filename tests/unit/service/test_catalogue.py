"""docs/metrics.md matches what the service's registry really exposes."""

from __future__ import annotations

import re

from ofa_ve.gpu import GpuCollector
from ofa_ve.metrics import ServiceMetrics
from prometheus_client import CollectorRegistry

from tests.support.env import ROOT
from tests.support.fake_nvml import make_fake_nvml, make_fake_torch

ROW = re.compile(r"^\|\s*`(?P<name>[a-z_:]+)`\s*\|\s*(?P<type>\w+)\s*\|(?P<labels>[^|]*)\|")


def documented() -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (type, labels) from the catalogue table."""
    rows = {}
    for line in (ROOT / "docs" / "metrics.md").read_text().splitlines():
        m = ROW.match(line)
        if m:
            labels = frozenset(re.findall(r"`([a-z_]+)`", m["labels"]))
            rows[m["name"]] = (m["type"], labels)
    return rows


def exposed() -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (type, labels) from a fully populated registry (fake GPU)."""
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry)
    registry.register(GpuCollector(nvml=make_fake_nvml(2), torch_module=make_fake_torch(1)))
    metrics.record_request("entailment", 200, 0.1)
    metrics.record_error("queue_full")
    metrics.observe_stage("decode", 0.001)
    metrics.batch_size.observe(4)
    metrics.image_size.observe(1000)
    metrics.image_pixels.observe(1000)
    metrics.model_info.labels("m", "r", "cpu", "float32").set(1)
    rows = {}
    for family in registry.collect():
        name = family.name + "_total" if family.type == "counter" else family.name
        labels = frozenset(k for s in family.samples for k in s.labels if k != "le")
        rows[name] = (family.type, labels)
    return rows


def test_catalogue_parses() -> None:
    """The table is found and has the core service metrics."""
    doc = documented()
    assert "ofa_ve_requests_total" in doc
    assert len(doc) >= 30


def test_every_exposed_metric_is_documented() -> None:
    """Nothing is exposed that the catalogue does not list."""
    assert sorted(set(exposed()) - set(documented())) == []


def test_every_documented_metric_is_exposed() -> None:
    """Nothing in the catalogue is missing from the registry."""
    assert sorted(set(documented()) - set(exposed())) == []


def test_types_and_labels_match() -> None:
    """Type and label set of each metric are the ones documented."""
    doc, real = documented(), exposed()
    mismatched = {n: (doc[n], real[n]) for n in doc.keys() & real.keys() if doc[n] != real[n]}
    assert mismatched == {}
