"""`python -m tests.fakechat --port 9000`: the fake chat server as a process or container."""

from __future__ import annotations

import argparse
import json

import uvicorn

from tests.fakechat.server import FakeChat, create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--config", default="{}", help="JSON as for POST /_fake/config")
    args = parser.parse_args()
    state = FakeChat()
    state.configure(json.loads(args.config))
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
