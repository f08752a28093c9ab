"""Alert pipeline dashboard: Prometheus -> Alertmanager -> webhook-relay -> chat."""

from __future__ import annotations

from dashgen.common import links
from dashgen.links import PIPELINE_UID
from dashgen.panels import Grid, dashboard, stat, timeseries

RI = "[$__rate_interval]"


def _alerts(g: Grid) -> None:
    g.row("Alerts")
    g.add(
        stat(
            "Alerts firing",
            [('count(ALERTS{alertstate="firing", alertname!="Watchdog"}) or vector(0)', "firing")],
            "short",
            thresholds=[(None, "green"), (1, "red")],
            decimals=0,
        ),
        width=6,
    )
    g.add(
        stat(
            "Watchdog firing",
            [('count(ALERTS{alertstate="firing", alertname="Watchdog"}) or vector(0)', "watchdog")],
            "bool_yes_no",
            description="Must always be yes: the Watchdog alert proves rule evaluation works.",
            thresholds=[(None, "red"), (1, "green")],
        ),
        width=6,
    )
    g.add(
        timeseries(
            "Alerts firing by severity",
            [('count by (severity) (ALERTS{alertstate="firing", alertname!="Watchdog"})', "{{severity}}")],
            "short",
            stack=True,
        ),
        width=12,
    )


def _prometheus(g: Grid) -> None:
    g.row("Prometheus")
    g.add(
        timeseries(
            "Alerts sent to Alertmanager",
            [
                (f"sum(rate(prometheus_notifications_sent_total{RI}))", "sent"),
                (f"sum(rate(prometheus_notifications_errors_total{RI}))", "errors"),
                (f"sum(rate(prometheus_notifications_dropped_total{RI}))", "dropped"),
            ],
            "ops",
        )
    )
    g.add(
        timeseries(
            "Rule evaluation failures",
            [
                (
                    f"sum by (rule_group) (rate(prometheus_rule_evaluation_failures_total{RI}))",
                    "{{rule_group}}",
                )
            ],
            "ops",
        )
    )
    g.add(
        timeseries(
            "Notification queue",
            [
                ("sum by (instance) (prometheus_notifications_queue_length)", "{{instance}} queued"),
                ("sum by (instance) (prometheus_notifications_queue_capacity)", "{{instance}} capacity"),
                (
                    "sum by (instance) (prometheus_notifications_alertmanagers_discovered)",
                    "{{instance}} Alertmanagers discovered",
                ),
            ],
            "short",
            description="Alerts waiting to be sent; near capacity the oldest are dropped "
            "(PrometheusNotificationQueueFull). No Alertmanager discovered: "
            "PrometheusNotConnectedToAlertmanagers.",
        )
    )
    g.add(
        stat(
            "Config reloads successful",
            [
                ("min by (instance) (prometheus_config_last_reload_successful)", "{{instance}}"),
                ("min by (instance) (alertmanager_config_last_reload_successful)", "{{instance}}"),
            ],
            "bool_yes_no",
            description="No: the last reload failed and the previous configuration still runs "
            "(PrometheusConfigReloadFailed, AlertmanagerConfigReloadFailed).",
            thresholds=[(None, "red"), (1, "green")],
        )
    )
    g.add(
        timeseries(
            "Scrape targets up",
            [("sum by (job) (up)", "{{job}} up"), ("count by (job) (up)", "{{job}} total")],
            "short",
        )
    )


def _alertmanager(g: Grid) -> None:
    g.row("Alertmanager")
    g.add(
        timeseries(
            "Notifications by integration",
            [
                (
                    f"sum by (integration) (rate(alertmanager_notifications_total{RI}))",
                    "{{integration}} sent",
                ),
                (
                    f"sum by (integration) (rate(alertmanager_notifications_failed_total{RI}))",
                    "{{integration}} failed",
                ),
            ],
            "ops",
        )
    )
    g.add(
        timeseries(
            "Notification latency P99",
            [
                (
                    "histogram_quantile(0.99, sum by (integration, le) "
                    f"(rate(alertmanager_notification_latency_seconds_bucket{RI})))",
                    "{{integration}}",
                )
            ],
            "s",
        )
    )
    g.add(
        timeseries(
            "Alerts in Alertmanager by state",
            [("sum by (state) (alertmanager_alerts)", "{{state}}")],
            "short",
        )
    )


def _relay(g: Grid) -> None:
    g.row("webhook-relay")
    g.add(
        timeseries(
            "Webhooks received by route and result",
            [
                (
                    f"sum by (route, result) (rate(webhook_relay_webhooks_received_total{RI}))",
                    "{{route}} {{result}}",
                )
            ],
            "reqps",
        )
    )
    g.add(
        timeseries(
            "Messages delivered by target",
            [
                (
                    f"sum by (target, channel) (rate(webhook_relay_messages_delivered_total{RI}))",
                    "{{target}} ({{channel}})",
                )
            ],
            "ops",
        )
    )
    g.add(
        timeseries(
            "Delivery failures and retries",
            [
                (
                    f"sum by (target, reason) (rate(webhook_relay_messages_failed_total{RI}))",
                    "{{target}} failed: {{reason}}",
                ),
                (f"sum by (target) (rate(webhook_relay_delivery_retries_total{RI}))", "{{target}} retries"),
                (
                    f"sum by (target) (rate(webhook_relay_rate_limit_waits_total{RI}))",
                    "{{target}} rate-limit waits",
                ),
            ],
            "ops",
        )
    )
    g.add(
        timeseries(
            "Delivery latency P95 by channel",
            [
                (
                    "histogram_quantile(0.95, sum by (channel, le) "
                    f"(rate(webhook_relay_delivery_duration_seconds_bucket{RI})))",
                    "{{channel}}",
                )
            ],
            "s",
        )
    )
    g.add(
        timeseries(
            "Outbox pending messages",
            [("sum by (target) (webhook_relay_outbox_pending)", "{{target}} pending")],
            "short",
        )
    )
    g.add(
        timeseries(
            "Outbox oldest pending message age",
            [("max by (target) (webhook_relay_outbox_oldest_pending_age_seconds)", "{{target}}")],
            "s",
            description="Dashed line: WebhookRelayOutboxBacklog threshold.",
            thresholds=[(None, "green"), (300, "red")],
        )
    )
    g.add(
        stat(
            "Dead letters waiting",
            [("sum by (target) (webhook_relay_dead_letters)", "{{target}}")],
            "short",
            description="Replay with POST /api/v1/dead-letters/{id}/replay once the cause is fixed.",
            thresholds=[(None, "green"), (1, "red")],
            decimals=0,
        ),
        width=8,
    )
    g.add(
        timeseries(
            "Dead letters added by reason",
            [
                (
                    "sum by (target, reason) (increase(webhook_relay_dead_letters_total[$__interval]))",
                    "{{target}} {{reason}}",
                )
            ],
            "short",
        ),
        width=16,
    )


def _relay_health(g: Grid) -> None:
    g.row("webhook-relay health")
    g.add(
        stat(
            "Targets failing",
            [("max by (target) (webhook_relay_target_failing)", "{{target}}")],
            "bool_yes_no",
            description="Yes while a message for the target waits after a failed attempt, backoff waits "
            "included (read from the outbox). 10 minutes of yes: WebhookRelayDeliveryFailing.",
            thresholds=[(None, "green"), (1, "red")],
        ),
        width=8,
        height=5,
    )
    g.add(
        stat(
            "Outbox writable",
            [("min by (instance) (webhook_relay_outbox_writable)", "{{instance}}")],
            "bool_yes_no",
            description="No: the disk under the outbox is full or read-only; webhooks get 503 and wait in "
            "Alertmanager (WebhookRelayOutboxNotWritable).",
            thresholds=[(None, "red"), (1, "green")],
        ),
        width=8,
        height=5,
    )
    g.add(
        stat(
            "Components up",
            [("min by (component) (webhook_relay_component_up)", "{{component}}")],
            "bool_yes_no",
            description="Supervised parts of the relay (WebhookRelayComponentDown after 2 minutes down).",
            thresholds=[(None, "red"), (1, "green")],
        ),
        width=8,
        height=5,
    )
    g.add(
        timeseries(
            "Task restarts",
            [(f"sum by (task) (increase(webhook_relay_task_restarts_total{RI}))", "{{task}}")],
            "short",
            description="Restarts by the supervisor; when they keep coming: WebhookRelayTaskRestarting.",
        )
    )
    g.add(
        timeseries(
            "Heartbeat forwards by result",
            [
                (
                    f"sum by (route, result) (increase(webhook_relay_heartbeat_forwards_total{RI}))",
                    "{{route}} {{result}}",
                )
            ],
            "short",
            description="Watchdog pings passed on to the external push monitor (HEARTBEAT_URL): ok, failed "
            "(the monitor did not accept), unhealthy (withheld: the relay's own checks failed).",
        )
    )
    g.add(
        timeseries(
            "Time since the last heartbeat forward",
            [
                (
                    "time() - max by (route) "
                    "(webhook_relay_heartbeat_forward_last_success_timestamp_seconds)",
                    "{{route}}",
                )
            ],
            "s",
            description="Dashed line: WebhookRelayHeartbeatForwardFailing threshold (10 minutes).",
            thresholds=[(None, "green"), (600, "red")],
        )
    )


def build() -> dict:
    """The alert pipeline dashboard."""
    g = Grid()
    for section in (_alerts, _prometheus, _alertmanager, _relay, _relay_health):
        section(g)
    return dashboard(
        PIPELINE_UID,
        "Alert pipeline",
        "From rule evaluation to the chat message: Prometheus, Alertmanager and webhook-relay.",
        g,
        [],
        links(),
    )
