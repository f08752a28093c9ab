"""`python -m webhook_relay` / the `webhook-relay` console script."""

from __future__ import annotations

import sys

from webhook_relay.cli import main

if __name__ == "__main__":
    sys.exit(main())
