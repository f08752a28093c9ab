"""Secrets of the stack, generated on first start into volumes (compose's one-shot `init` service).

    python init_secrets.py            generate what is missing, apply .env overrides, say how to read them
    python init_secrets.py show NAME  print one secret (relay_token, grafana_admin_password)

Each secret is a file in a named volume mounted only where it is needed: the relay's bearer token in
`relay-secrets` (the relay and Alertmanager's credentials_file), Grafana's admin password in
`grafana-secrets` (GF_SECURITY_ADMIN_PASSWORD__FILE). A value set in .env (RELAY_AUTH_TOKEN,
GRAFANA_ADMIN_PASSWORD) reaches this script as a file, never as an environment variable, and wins over
the generated one; otherwise a value generated once is kept across restarts. Values are never logged.
Standard library only: it runs in the plain python image.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

OVERRIDES = Path(os.environ.get("INIT_OVERRIDES", "/run/init/overrides.env"))
ROOT = Path(os.environ.get("INIT_SECRETS_ROOT", "/secrets"))


@dataclass(frozen=True)
class Secret:
    name: str
    path: str  # relative to ROOT: "<volume folder>/<file>"
    variable: str  # the .env variable that overrides it
    what: str


SECRETS = (
    Secret("relay_token", "relay/relay_token", "RELAY_AUTH_TOKEN",
           "relay bearer token (Alertmanager -> relay, and the /inbox password)"),
    Secret("grafana_admin_password", "grafana/admin_password", "GRAFANA_ADMIN_PASSWORD",
           "Grafana admin password"),
)


def read_overrides(path: Path) -> dict[str, str]:
    """`NAME=value` lines (the stack writes them from .env); missing file: none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    values = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            values[name.strip()] = value.rstrip("\r")
    return values


def write(path: Path, value: str) -> None:
    """Atomically, readable by the services' own users (the file is in a volume only they mount)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(value + "\n", encoding="utf-8")
    tmp.chmod(0o444)
    os.replace(tmp, path)


def current(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def generate(root: Path = ROOT, overrides: Path = OVERRIDES) -> list[str]:
    """Make every secret exist; returns one line per secret saying where its value came from."""
    given = read_overrides(overrides)
    report = []
    for secret in SECRETS:
        path = root / secret.path
        wanted, existing = given.get(secret.variable, "").strip(), current(path)
        if wanted:
            if wanted != existing:
                write(path, wanted)
            origin = f"from .env ({secret.variable})"
        elif existing:
            origin = "kept (generated at an earlier start)"
        else:
            write(path, secrets.token_urlsafe(32))
            origin = "generated"
        report.append(f"{secret.what}: {origin}")
    return report


HOW_TO_READ = """\
Read them with `make secrets` (or: docker compose run --rm --no-deps init show grafana_admin_password).
  Grafana     http://127.0.0.1:3000  user admin, password: grafana_admin_password
  Relay inbox http://127.0.0.1:8080/inbox  any user name, password: relay_token
Set RELAY_AUTH_TOKEN / GRAFANA_ADMIN_PASSWORD in .env to choose them yourself (after changing one:
`docker compose up -d --force-recreate init webhook-relay`). Grafana takes its password at its first start."""


def main(argv: list[str]) -> int:
    if argv[:1] == ["show"]:
        names = argv[1:] or [s.name for s in SECRETS]
        known = {s.name: s for s in SECRETS}
        for name in names:
            if name not in known:
                sys.stderr.write(f"unknown secret {name!r}; known: {', '.join(known)}\n")
                return 2
            value = current(ROOT / known[name].path)
            if not value:
                sys.stderr.write(f"{name} does not exist yet: run `docker compose up` first\n")
                return 1
            sys.stdout.write(f"{value}\n" if len(names) == 1 else f"{name}: {value}\n")
        return 0
    if argv:
        sys.stderr.write(__doc__ or "")
        return 2
    for line in generate():
        sys.stdout.write(f"[init] {line}\n")
    sys.stdout.write(HOW_TO_READ + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
