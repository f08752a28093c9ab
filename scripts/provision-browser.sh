#!/usr/bin/env bash
# Installs Debian's Chromium (headless browser tests drive it through Playwright's executable_path:
# Playwright's own browser download is not reachable here). Idempotent. Run as root.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then echo "[provision-browser] $(/usr/bin/chromium --version 2>/dev/null)" >&2; exit 0; fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
echo "[provision-browser] $(/usr/bin/chromium --version 2>/dev/null)" >&2
