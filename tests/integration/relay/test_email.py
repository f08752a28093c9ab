"""The email channel against a real SMTP server (aiosmtpd): STARTTLS, TLS, AUTH, refusals, dropped links."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from webhook_relay.alertmanager import Notification
from webhook_relay.channels import Outcome, open_channel
from webhook_relay.config import Target, parse_config
from webhook_relay.metrics import RelayMetrics
from webhook_relay.outbox import Outbox
from webhook_relay.render import Message, Renderer
from webhook_relay.sender import Sender

from tests.support.env import free_port
from tests.support.relay import alert, notification
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.integration

USER, PASSWORD = "relay", "smtp-pass-123"


def email_target(port: int, tls: str = "starttls", ca: Path | None = None, **smtp: object) -> Target:
    return Target.model_validate({
        "kind": "email",
        "language": "en",
        "smtp": {"host": "127.0.0.1", "port": port, "tls": tls, "sender": "alerts@relay.test",
                 "ca_file": str(ca) if ca else "", "timeout_seconds": 5, **smtp},
        "recipients": {"critical": "oncall@ops.test, lead@ops.test", "warning": ""},
    })


def send(target: Target, message: Message | None = None):
    async def go():
        async with httpx.AsyncClient() as client:
            channel = open_channel("email-ops", target, client=client)
            default = Message("[FIRING:1] DiskFull", "**disk** full", severity="critical")
            return await channel.send(message or default, now=1_764_000_000.0)

    return asyncio.run(go())


def test_starttls_with_auth_delivers_a_multipart_message_to_the_critical_recipients(tmp_path):
    """STARTTLS, then AUTH: one message with a plain-text and an HTML part from the same markdown."""
    with SmtpServer(tmp_path, "starttls", user=USER, password=PASSWORD) as server:
        target = email_target(server.port, ca=server.ca, username=USER, password=PASSWORD)
        note = notification(alert("DiskFull", summary="Disk almost full", description="95 % used"))
        [message] = Renderer(target).render(Notification.model_validate(note))
        result = send(target, message)
    assert (result.outcome, result.reason) == (Outcome.DELIVERED, "ok")
    [got] = server.messages
    assert server.logins == [USER]
    assert got.mail_from == "alerts@relay.test"
    assert got.rcpt_tos == ["oncall@ops.test", "lead@ops.test"]
    mail = got.message
    assert mail["Subject"] == "[FIRING:1] DiskFull" and mail["X-Alert-Severity"] == "critical"
    assert mail.get_content_type() == "multipart/alternative"
    plain = mail.get_body(("plain",)).get_content()
    page = mail.get_body(("html",)).get_content()
    assert "Disk almost full" in plain and "<font" not in plain
    assert "Disk almost full" in page and "<strong>Summary</strong>" in page


def test_implicit_tls_trusting_a_private_ca_delivers(tmp_path):
    """TLS from the first byte (port 465 style), the server's certificate checked against ca_file."""
    with SmtpServer(tmp_path, "tls") as server:
        result = send(email_target(server.port, tls="tls", ca=server.ca))
    assert result.outcome is Outcome.DELIVERED and len(server.messages) == 1


def test_untrusted_certificate_is_permanent(tmp_path):
    """A certificate the trust store does not vouch for is a configuration problem: a dead letter."""
    with SmtpServer(tmp_path, "tls") as server:
        result = send(email_target(server.port, tls="tls"))
    assert (result.outcome, result.reason) == (Outcome.PERMANENT, "tls")
    assert server.messages == []


def test_starttls_required_but_not_offered_is_permanent(tmp_path):
    """`tls: starttls` against a server without STARTTLS refuses to go on in clear text."""
    with SmtpServer(tmp_path, "plain") as server:
        result = send(email_target(server.port, tls="starttls", ca=server.ca))
    assert (result.outcome, result.reason) == (Outcome.PERMANENT, "tls")
    assert server.messages == []


def test_wrong_password_is_permanent_and_never_in_the_detail(tmp_path):
    """535 to AUTH: the message is a dead letter; the detail does not quote the password."""
    with SmtpServer(tmp_path, "starttls", user=USER, password=PASSWORD) as server:
        result = send(email_target(server.port, ca=server.ca, username=USER, password="wrong-pass-456"))
    assert (result.outcome, result.reason) == (Outcome.PERMANENT, "auth")
    assert "535" in result.detail and "wrong-pass-456" not in result.detail


@pytest.mark.parametrize(
    ("where", "reply", "outcome", "reason"),
    [
        ("rcpt", "550 5.1.1 no such user", Outcome.PERMANENT, "refused"),
        ("rcpt", "451 4.3.0 try again later", Outcome.TRANSIENT, "smtp_4xx"),
        ("data", "554 5.7.1 rejected as spam", Outcome.PERMANENT, "smtp_5xx"),
        ("data", "452 4.3.1 insufficient storage", Outcome.TRANSIENT, "smtp_4xx"),
    ],
)
def test_refusals_4xx_are_retried_and_5xx_are_permanent(tmp_path, where, reply, outcome, reason):
    """SMTP's reply classes decide: 4xx transient (retry), 5xx permanent (dead letter)."""
    with SmtpServer(tmp_path, "plain") as server:
        setattr(server.handler, f"refuse_{where}", reply)
        result = send(email_target(server.port, tls="none"))
    assert (result.outcome, result.reason) == (outcome, reason)
    assert reply[:3] in result.detail
    assert server.messages == []


def test_dropped_connection_and_no_server_are_transient(tmp_path):
    """A server that hangs up mid-message, or nobody listening, is retried later."""
    with SmtpServer(tmp_path, "plain") as server:
        server.handler.drop = True
        dropped = send(email_target(server.port, tls="none"))
    assert (dropped.outcome, dropped.reason) == (Outcome.TRANSIENT, "network")
    nobody = send(email_target(free_port(), tls="none"))
    assert (nobody.outcome, nobody.reason) == (Outcome.TRANSIENT, "network")


def test_severity_without_recipients_is_not_mailed(tmp_path):
    """SMTP_TO_WARNING empty: a warning is not mailed at all (and not counted as a failure)."""
    with SmtpServer(tmp_path, "plain") as server:
        result = send(email_target(server.port, tls="none"), Message("[FIRING:1] X", "x", severity="warning"))
    assert (result.outcome, result.reason) == (Outcome.DELIVERED, "skipped")
    assert server.messages == []


def _relay(tmp_path: Path, port: int) -> tuple[Sender, Outbox, CollectorRegistry]:
    config = parse_config(f"""
server: {{auth_token: t}}
storage: {{path: {tmp_path / "o.db"}}}
delivery: {{backoff_initial_seconds: 0.01, backoff_max_seconds: 0.02, poll_interval_seconds: 0.05}}
targets:
  email-ops:
    kind: email
    smtp: {{host: 127.0.0.1, port: {port}, tls: none, sender: alerts@relay.test, timeout_seconds: 5}}
    recipients: {{critical: [oncall@ops.test]}}
  inbox: {{kind: inbox}}
routes:
  critical: {{targets: [email-ops, inbox]}}
""", env={})
    outbox = Outbox(tmp_path / "o.db")
    registry = CollectorRegistry()
    return Sender(config, outbox, RelayMetrics(registry), httpx.AsyncClient()), outbox, registry


def test_through_the_outbox_5xx_is_a_dead_letter_and_4xx_is_retried_until_it_goes(tmp_path):
    """The same outbox as the robots: a 451 is retried and then delivered; a 550 becomes a dead letter,
    and the inbox shows what the mailbox got and what it refused; a severity without recipients is done
    without mail (and not counted as delivered)."""
    with SmtpServer(tmp_path, "plain") as server:
        sender, outbox, registry = _relay(tmp_path, server.port)
        try:
            server.handler.refuse_rcpt = "451 4.3.0 greylisted"
            outbox.enqueue("critical", ["email-ops"], json.dumps(notification(alert("Retried"))), None, 0,
                           time.time())
            assert asyncio.run(sender.step("email-ops")) is True
            assert server.messages == [] and outbox.due("email-ops", 1e12)[0].attempts == 1
            server.handler.refuse_rcpt = None
            asyncio.run(asyncio.sleep(0.05))
            assert asyncio.run(sender.step("email-ops")) is True
            assert len(server.messages) == 1 and outbox.due("email-ops", 1e12) == []

            server.handler.refuse_rcpt = "550 5.1.1 unknown mailbox"
            outbox.enqueue("critical", ["email-ops"], json.dumps(notification(alert("Refused"))), None, 0,
                           time.time())
            asyncio.run(sender.step("email-ops"))
            [dead] = outbox.dead_letters(10)
            assert (dead.target, dead.reason) == ("email-ops", "refused")
            shown = {(e.title, e.outcome) for e in sender.inbox.entries("email-ops")}
            assert shown == {("[FIRING:1] Retried", "sent"), ("[FIRING:1] Refused", "refused")}

            warning = notification(alert("NobodyMailed", severity="warning"))
            outbox.enqueue("critical", ["email-ops"], json.dumps(warning), None, 0, time.time())
            asyncio.run(sender.step("email-ops"))
            assert outbox.due("email-ops", 1e12) == [] and len(server.messages) == 1  # done, not mailed
            delivered = registry.get_sample_value(
                "webhook_relay_messages_delivered_total", {"target": "email-ops", "channel": "email"})
            assert delivered == 1  # the one mail that really went
        finally:
            asyncio.run(sender.client.aclose())
            outbox.close()
