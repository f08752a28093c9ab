"""The fake robots' credentials, as compose.test.yml (fakechat) and compose.robots.yml (relay) spell them."""

from __future__ import annotations

DINGTALK_TOKEN = "e2e-dingtalk-token"
DINGTALK_SECRET = "SECe2e0dingtalk0signing0secret"
WECOM_KEY = "e2e-wecom-key"
FEISHU_TOKEN = "e2e-feishu-token"
FEISHU_SECRET = "e2e-feishu-signing-secret"
PING_TOKEN = "e2e-push-monitor"
RELAY_PUBLIC_URL = "http://relay.e2e.invalid:8080"
# The main run's robots (target -> channel); email has no fake server in the stack (tests/integration/relay
# test it against a real SMTP server), and the inbox needs no robot.
ROBOTS = {"dingtalk-ops": "dingtalk", "wecom-ops": "wecom", "feishu-ops": "feishu"}
