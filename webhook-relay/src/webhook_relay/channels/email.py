"""Email over SMTP (STARTTLS, implicit TLS or plain; optional AUTH): one multipart message per part.

The plain-text part is the rendered markdown, the HTML part the same markdown as HTML, so both come
from the one template every channel uses. Sending runs the standard library's `smtplib` in a worker
thread: one message at a time per target, which is what the rate limit allows anyway, and no extra
dependency. SMTP's own classes decide what happens next: 4xx replies (and dropped connections,
timeouts, refused connections) are retried; 5xx replies, a rejected login and a certificate that
does not verify are permanent, so the message becomes a dead letter a person looks at.
"""

from __future__ import annotations

import asyncio
import html
import logging
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from webhook_relay.channels.base import DELIVERED, Outcome, Result
from webhook_relay.config import Smtp, Target
from webhook_relay.markup import markdown_html, plain_text
from webhook_relay.masking import scrub
from webhook_relay.render import Message

log = logging.getLogger(__name__)

REASONS = ("auth", "network", "refused", "smtp_4xx", "smtp_5xx", "timeout", "tls")
_STATUS_COLORS = {"firing": "#d93025", "resolved": "#188038", "notice": "#1a73e8"}
_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font:14px/1.5 -apple-system,'Segoe UI',Roboto,'PingFang SC','Microsoft YaHei',sans-serif;\
color:#202124">
<div style="border-left:6px solid {color};padding:4px 14px">
{body}
</div>
<p style="color:#80868b;font-size:12px">webhook-relay</p>
</body></html>
"""


def _one_line(text: str) -> str:
    # A header holds one line: an alert name with a newline would otherwise inject headers.
    return " ".join(text.split())


def _smtp_result(code: int, reason: str, text: bytes | str) -> Result:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    detail = f"SMTP {code}: {message[:200]}"
    if 400 <= code < 500:
        return Result(Outcome.TRANSIENT, "smtp_4xx", detail)
    return Result(Outcome.PERMANENT, reason, detail)


class EmailChannel:
    """A mailbox (or several, per severity) as a `Channel`."""

    reasons = REASONS

    def __init__(self, target: Target) -> None:
        assert target.smtp is not None  # guaranteed by config validation
        self.target = target
        self.smtp: Smtp = target.smtp

    def build(self, message: Message, now: float, recipients: list[str]) -> EmailMessage:
        """The multipart/alternative message: plain text and HTML from the same markdown."""
        mail = EmailMessage()
        mail["Subject"] = _one_line(message.title)
        mail["From"] = self.smtp.sender
        mail["To"] = ", ".join(recipients)
        mail["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
        mail["Message-ID"] = make_msgid(domain=self.smtp.sender.rsplit("@", 1)[1])
        if message.severity:
            mail["X-Alert-Severity"] = _one_line(message.severity)
        mail.set_content(plain_text(message.text))
        color = _STATUS_COLORS.get(message.status, "#80868b")
        page = _HTML.format(title=html.escape(message.title), color=color, body=markdown_html(message.text))
        mail.add_alternative(page, subtype="html")
        return mail

    def preview(self, message: Message, now: float) -> dict[str, Any]:
        recipients = self.target.recipients_for(message.severity)
        mail = self.build(message, now, recipients)
        parts = {p.get_content_type(): p.get_content() for p in mail.iter_parts()}
        return {
            "smtp": f"{self.smtp.host}:{self.smtp.effective_port} ({self.smtp.tls})",
            "from": self.smtp.sender,
            "to": recipients,
            "subject": mail["Subject"],
            "text": parts.get("text/plain", ""),
            "html": parts.get("text/html", ""),
        }

    async def send(self, message: Message, now: float) -> Result:
        recipients = self.target.recipients_for(message.severity)
        if not recipients:
            # The operator gave no addresses for this severity: mailing nobody is the configuration.
            return Result(Outcome.DELIVERED, "skipped", f"no recipients for severity {message.severity!r}")
        mail = self.build(message, now, recipients)
        result = await asyncio.to_thread(self._deliver, mail, recipients)
        secret = [self.smtp.password.get_secret_value()] if self.smtp.password else []
        return Result(result.outcome, result.reason, scrub(result.detail, secret))

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.smtp.ca_file) if self.smtp.ca_file else None)

    def _deliver(self, mail: EmailMessage, recipients: list[str]) -> Result:
        smtp = self.smtp
        client: smtplib.SMTP | None = None
        try:
            if smtp.tls == "tls":
                client = smtplib.SMTP_SSL(smtp.host, smtp.effective_port, timeout=smtp.timeout_seconds,
                                          context=self._context())
            else:
                client = smtplib.SMTP(smtp.host, smtp.effective_port, timeout=smtp.timeout_seconds)
            if smtp.tls == "starttls":
                # Refuses (SMTPNotSupportedError) rather than sending the password in clear text.
                client.starttls(context=self._context())
            if smtp.username is not None and smtp.password is not None:
                client.login(smtp.username, smtp.password.get_secret_value())
            refused = client.send_message(mail, from_addr=smtp.sender, to_addrs=recipients)
        except smtplib.SMTPAuthenticationError as exc:
            return _smtp_result(exc.smtp_code, "auth", exc.smtp_error)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            first = next(iter(exc.recipients.values()), (550, b""))
            if codes and all(400 <= c < 500 for c in codes):
                return _smtp_result(first[0], "refused", first[1])
            return _smtp_result(max(codes, default=550), "refused", first[1])
        except smtplib.SMTPResponseException as exc:
            return _smtp_result(exc.smtp_code, "smtp_5xx", exc.smtp_error)
        except smtplib.SMTPNotSupportedError:
            return Result(Outcome.PERMANENT, "tls", "the server does not offer STARTTLS")
        except smtplib.SMTPServerDisconnected as exc:
            return Result(Outcome.TRANSIENT, "network", f"connection closed: {exc}"[:200])
        except ssl.SSLCertVerificationError as exc:
            return Result(Outcome.PERMANENT, "tls", f"certificate not trusted: {exc.verify_message}")
        except ssl.SSLError as exc:
            return Result(Outcome.TRANSIENT, "tls", f"{type(exc).__name__}: {exc}"[:200])
        except TimeoutError:
            return Result(Outcome.TRANSIENT, "timeout", "SMTP timed out")
        except (smtplib.SMTPException, OSError) as exc:
            return Result(Outcome.TRANSIENT, "network", f"{type(exc).__name__}: {exc}"[:200])
        finally:
            if client is not None:
                try:
                    client.quit()
                except (smtplib.SMTPException, OSError):
                    client.close()
        if refused:
            # Accepted for some recipients: delivered; the others are named for the operator.
            log.warning("some email recipients refused", extra={"refused": sorted(refused)})
        return DELIVERED
