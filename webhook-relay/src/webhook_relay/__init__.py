"""Alertmanager webhook relay to DingTalk / WeCom / Feishu group robots."""

__version__ = "0.1.0"
