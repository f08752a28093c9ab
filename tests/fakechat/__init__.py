"""A fake DingTalk / WeCom / Feishu robot server for tests (see README.md beside this file)."""

from tests.fakechat.server import FakeChat, FakeChatServer, create_app

__all__ = ["FakeChat", "FakeChatServer", "create_app"]
