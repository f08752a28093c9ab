"""SLO dashboard: error budget remaining and burn rate per alerting window, for both SLOs."""

from __future__ import annotations

from dashgen.common import links
from dashgen.links import SLO_UID
from dashgen.panels import Grid, dashboard, stat, timeseries

# The windows recorded in prometheus/rules/slo.rules.yml, short to long.
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# Burn-rate factors of the page and ticket alerts (prometheus/alerts/slo.alerts.yml).
BURN_FACTORS = (1, 3, 6, 14.4)

SLOS = (
    ("availability", "Availability", "99.5 % of entailment and batch requests end without a server error."),
    ("latency", "Latency", "99 % of entailment requests finish within 1 s."),
)


def _section(g: Grid, slo: str, title: str, meaning: str) -> None:
    ratio = f"service:ofa_ve_slo_{slo}_errors:ratio_rate"
    budget = f"(1 - service:ofa_ve_slo_{slo}:objective)"
    g.row(f"{title} SLO: {meaning}")
    g.add(
        stat(
            f"{title}: error budget remaining (30 days)",
            [(f"1 - {ratio}30d / on (service) {budget}", "{{service}}")],
            "percentunit",
            description="Share of the 30-day error budget not yet spent; below 0 the SLO is missed.",
            thresholds=[(None, "red"), (0.25, "orange"), (0.5, "green")],
            decimals=1,
        ),
        width=6,
        height=6,
    )
    g.add(
        stat(
            f"{title}: SLI over 30 days",
            [(f"1 - {ratio}30d", "{{service}}")],
            "percentunit",
            decimals=3,
        ),
        width=6,
        height=6,
    )
    g.add(
        stat(
            f"{title}: objective",
            [(f"service:ofa_ve_slo_{slo}:objective", "{{service}}")],
            "percentunit",
            decimals=2,
        ),
        width=6,
        height=6,
    )
    g.add(
        stat(
            f"{title}: budget-burn alerts firing",
            [
                (
                    'count by (severity) (ALERTS{alertstate="firing", '
                    f'alertname="OfaVe{title}BudgetBurn"}}) or vector(0)',
                    "{{severity}}",
                )
            ],
            "short",
            thresholds=[(None, "green"), (1, "red")],
            decimals=0,
        ),
        width=6,
        height=6,
    )
    g.add(
        timeseries(
            f"{title}: burn rate per window",
            [(f"{ratio}{w} / on (service) {budget}", w) for w in WINDOWS],
            "suffix:x",
            description="Error ratio divided by the budget: 1 spends the budget in exactly 30 days. "
            "Dashed lines: the 1x, 3x, 6x and 14.4x alert factors.",
            thresholds=[(None, "green"), *((factor, "red") for factor in BURN_FACTORS)],
        ),
        width=16,
        height=9,
    )
    g.add(
        timeseries(
            f"{title}: error budget remaining over time",
            [(f"1 - {ratio}30d / on (service) {budget}", "{{service}}")],
            "percentunit",
            minimum=None,
        ),
        width=8,
        height=9,
    )


def build() -> dict:
    """The SLO dashboard."""
    g = Grid()
    for slo, title, meaning in SLOS:
        _section(g, slo, title, meaning)
    return dashboard(
        SLO_UID,
        "OFA-VE SLO",
        "Error budgets and multi-window burn rates of the OFA-VE availability and latency SLOs.",
        g,
        [],
        links(),
    )
