"""Drill: a replica starts while its model is missing; the model appears 40 simulated minutes later."""

from __future__ import annotations

import shutil

import pytest

from tests.drills import checks
from tests.drills.transcript import keys, render
from tests.drills.world import World
from tests.support.service import ensure_tiny_model, start_server, stop_server

pytestmark = [pytest.mark.integration, pytest.mark.drill]

MODEL_AT = 40 * 60
SETTLE = 20 * 60


def test_model_load_fails_then_succeeds(world: World, tmp_path) -> None:
    """OfaVeModelLoadFailed pages while loads keep failing (not resolving between retries) and resolves
    once a retry finds the model; OfaVeModelNotReady (a load that hangs) never fires."""
    model = tmp_path / "models" / "ofa-ve"
    replica = start_server(
        tmp_path, "late-model", wait_ready=False, OFA_VE_MODEL=str(model), OFA_VE_EXPECTED_REPLICAS="2",
        OFA_VE_TORCH_THREADS="1", **world.c.ofa_ve_env(),
    )  # fmt: skip
    try:
        world.set_targets([*world.replicas, replica])
        world.start()
        world.sleep_until(MODEL_AT)
        staging = tmp_path / "models" / "staging"
        shutil.copytree(ensure_tiny_model(), staging)
        staging.rename(model)  # appears whole, as a finished download would
        world.sleep_until(MODEL_AT + SETTLE)
        entries = world.transcript()
        report = render(entries)
        checks.first(entries, "wecom", "FIRING", "OfaVeModelLoadFailed")
        resolved = checks.first(entries, "wecom", "RESOLVED", "OfaVeModelLoadFailed")
        assert resolved.sim_t > MODEL_AT, report
        fired = checks.assert_reminders(entries, "wecom", "OfaVeModelLoadFailed", "critical", resolved.sim_t)
        assert checks.counts(entries, "wecom") == {
            ("FIRING", "OfaVeModelLoadFailed"): fired,
            ("RESOLVED", "OfaVeModelLoadFailed"): 1,
        }, report
        assert "FileNotFoundError" in replica.log_text() or "failed" in replica.log_text()
        assert keys(entries, "dingtalk") == keys(entries, "wecom"), report
        checks.links_resolve(world, entries)
    finally:
        stop_server(replica)
