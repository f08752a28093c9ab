"""`webhook-relay serve | check-config | send-test | dead-letters list | replay ID | discard ID`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from webhook_relay.alertmanager import Notification
from webhook_relay.app import create_app
from webhook_relay.channels import Outcome, open_channel
from webhook_relay.config import ConfigError, RelayConfig, environment, load_config
from webhook_relay.inbox import Inbox
from webhook_relay.logs import setup_logging
from webhook_relay.outbox import Outbox, StorageError
from webhook_relay.render import Renderer, RenderError
from webhook_relay.routes.dead_letters import dead_letter_json
from webhook_relay.settings import RelaySettings
from webhook_relay.split import SplitError


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def sample_notification(status: str = "firing") -> Notification:
    """A realistic one-alert notification, for check-config and send-test."""
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return Notification.model_validate(
        {
            "version": "4",
            "receiver": "test",
            "status": status,
            "groupKey": '{}:{alertname="RelayTest"}',
            "groupLabels": {"alertname": "RelayTest"},
            "commonLabels": {"alertname": "RelayTest"},
            "externalURL": "",
            "alerts": [
                {
                    "status": status,
                    "labels": {"alertname": "RelayTest", "severity": "info"},
                    "annotations": {
                        "summary": "webhook-relay test message",
                        "summary_zh": "webhook-relay 测试消息",
                        "description": "Sent by `webhook-relay send-test`; nothing is wrong.",
                        "description_zh": "由 `webhook-relay send-test` 发送；一切正常。",
                    },
                    "startsAt": now,
                    "endsAt": now if status == "resolved" else "0001-01-01T00:00:00Z",
                    "fingerprint": "0000000000000000",
                }
            ],
        }
    )


def check_config(config: RelayConfig) -> None:
    """Read the token file, compile every target's template and render a sample, so that these errors
    stop start-up."""
    config.server.token()
    for name, target in config.targets.items():
        try:
            Renderer(target).render(sample_notification())
        except (RenderError, SplitError) as exc:
            raise ConfigError(f"targets.{name}.template: {exc}") from None


def _load(settings: RelaySettings, path: str | None) -> RelayConfig:
    config = load_config(Path(path) if path else settings.config, environment(settings.env_file))
    check_config(config)
    return config


def cmd_serve(config: RelayConfig) -> int:
    import uvicorn

    outbox = Outbox(config.storage.path)
    app = create_app(config, CollectorRegistry(), outbox)
    try:
        uvicorn.run(
            app,
            host=config.server.host,
            port=config.server.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    finally:
        outbox.close()
    return 0


def cmd_send_test(config: RelayConfig, target_name: str) -> int:
    if target_name not in config.targets:
        _out(f"unknown target {target_name!r}; configured: {sorted(config.targets)}")
        return 2
    target = config.targets[target_name]
    messages = Renderer(target, config.links).render(sample_notification())
    # Only the inbox channel touches the outbox database (shared with a running relay: SQLite WAL).
    outbox = Outbox(config.storage.path) if target.kind == "inbox" else None

    async def send() -> int:
        async with httpx.AsyncClient(timeout=config.delivery.timeout_seconds) as client:
            inbox = Inbox(outbox, config.inbox.keep_per_target) if outbox is not None else None
            channel = open_channel(target_name, target, client=client, inbox=inbox)
            for message in messages:
                result = await channel.send(message, time.time())
                _out(f"{target_name}: {result.outcome.value} ({result.reason}) {result.detail}".rstrip())
                if result.outcome is not Outcome.DELIVERED:
                    return 1
        return 0

    try:
        return asyncio.run(send())
    finally:
        if outbox is not None:
            outbox.close()


def cmd_dead_letters(config: RelayConfig, action: str, delivery_id: int | None) -> int:
    outbox = Outbox(config.storage.path)
    try:
        if action == "list":
            for item in outbox.dead_letters(1000):
                _out(json.dumps(dead_letter_json(item), ensure_ascii=False))
            return 0
        assert delivery_id is not None
        if action == "discard":
            if outbox.discard(delivery_id):
                _out(f"dead letter {delivery_id} discarded")
                return 0
            _out(f"no dead letter with id {delivery_id}")
            return 1
        if outbox.replay(delivery_id, time.time()):
            _out(
                f"dead letter {delivery_id} requeued; the running relay delivers it within its poll interval"
            )
            return 0
        _out(f"no dead letter with id {delivery_id}")
        return 1
    finally:
        outbox.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="webhook-relay", description=__doc__)
    parser.add_argument(
        "--config", help="config file (default: $WEBHOOK_RELAY_CONFIG or /etc/webhook-relay/config.yml)"
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the relay (default)")
    sub.add_parser("check-config", help="validate the config and templates, then exit")
    test = sub.add_parser("send-test", help="send a test message to one target now (not through the outbox)")
    test.add_argument("target")
    dead = sub.add_parser("dead-letters", help="list, replay or discard dead letters")
    dead_sub = dead.add_subparsers(dest="action", required=True)
    dead_sub.add_parser("list")
    replay = dead_sub.add_parser("replay", help="send it again (after fixing the cause)")
    replay.add_argument("id", type=int)
    discard = dead_sub.add_parser("discard", help="delete it for good (nobody needs it any more)")
    discard.add_argument("id", type=int)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = RelaySettings()
    setup_logging(settings.log_format, settings.log_level)
    try:
        config = _load(settings, args.config)
    except ConfigError as exc:
        sys.stderr.write(f"webhook-relay: invalid configuration: {exc}\n")
        return 2
    command = args.command or "serve"
    try:
        if command == "serve":
            return cmd_serve(config)
        if command == "check-config":
            _out(f"configuration OK: {len(config.targets)} target(s), routes {sorted(config.routes)}")
            return 0
        if command == "send-test":
            return cmd_send_test(config, args.target)
        return cmd_dead_letters(config, args.action, getattr(args, "id", None))
    except StorageError as exc:
        sys.stderr.write(f"webhook-relay: outbox database error: {exc}\n")
        return 1
