#!/usr/bin/env bash
# Puts the Prometheus / Alertmanager / promtool / amtool binaries and VictoriaMetrics' single-node server
# with vmbackup / vmrestore at the versions the stack pins into .tools/bin, plus the Compose v2 plugin
# into .tools/docker-cli-plugins.
# They come from Debian trixie's packages, fetched without touching the machine's apt setup. The
# Prometheus binaries are static Go; victoria-metrics and vmbackup link libzstd.so.1: trixie's package
# asks for libzstd1 >= 1.5.5, but every ZSTD_* symbol they import is in bookworm's 1.5.4 (checked with
# `nm -D`), so they run on bookworm as they are. Cached per machine; a re-run takes well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
# Versions the compose file pins (tests/unit/test_versions.py keeps them in step).
PROMETHEUS_VERSION=2.53.3
ALERTMANAGER_VERSION=0.28.1
# Debian's build of VictoriaMetrics prints no version (`-version` is empty): the installed version is
# remembered in $BIN/victoria-metrics.version, taken from the package it came from.
VICTORIAMETRICS_VERSION=1.112.0
CACHE=${OFA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ofa-ve-tools}
BIN=.tools/bin
# Debian's alertmanager reads its default notification templates from this fixed directory and
# refuses to load any config without them.
AM_TEMPLATES=/usr/share/prometheus/alertmanager
log() { printf '[provision-tools] %s\n' "$*" >&2; }

have_all() {
  [ -x "$BIN/prometheus" ] && [ -x "$BIN/promtool" ] && [ -x "$BIN/alertmanager" ] && [ -x "$BIN/amtool" ] \
    && [ -x .tools/docker-cli-plugins/docker-compose ] \
    && [ -f "$AM_TEMPLATES/default.tmpl" ] \
    && [ -x "$BIN/victoria-metrics" ] && [ -x "$BIN/vmbackup" ] && [ -x "$BIN/vmrestore" ] \
    && [ "$(cat "$BIN/victoria-metrics.version" 2>/dev/null)" = "$VICTORIAMETRICS_VERSION" ] \
    && "$BIN/prometheus" --version 2>&1 | grep -q "version $PROMETHEUS_VERSION" \
    && "$BIN/alertmanager" --version 2>&1 | grep -q "version $ALERTMANAGER_VERSION"
}
if have_all; then log "tools up to date"; exit 0; fi

# The machine's own Debian mirror: never a host name written into the project.
MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$MIRROR" ] || MIRROR=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
[ -n "$MIRROR" ] || { log "no Debian mirror found in apt sources"; exit 1; }

DEBS=$CACHE/debs
mkdir -p "$DEBS"
if ! ls "$DEBS"/prometheus_"$PROMETHEUS_VERSION"*.deb "$DEBS"/prometheus-alertmanager_"$ALERTMANAGER_VERSION"*.deb \
      "$DEBS"/promtool_"$PROMETHEUS_VERSION"*.deb "$DEBS"/docker-compose_*.deb \
      "$DEBS"/victoria-metrics_"$VICTORIAMETRICS_VERSION"*.deb >/dev/null 2>&1; then
  log "downloading trixie packages"
  APT=$CACHE/trixie-apt
  mkdir -p "$APT/lists/partial" "$APT/archives/partial"
  echo "deb $MIRROR trixie main" >"$APT/sources.list"
  O=(-o Dir::Etc::sourcelist="$APT/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$APT/lists"
     -o Dir::Cache::Archives="$APT/archives" -o APT::Sandbox::User=root)
  apt-get "${O[@]}" -qq update
  (cd "$DEBS" && apt-get "${O[@]}" -qq download prometheus prometheus-alertmanager promtool docker-compose \
    victoria-metrics)
fi
ls "$DEBS"/prometheus_"$PROMETHEUS_VERSION"*.deb "$DEBS"/prometheus-alertmanager_"$ALERTMANAGER_VERSION"*.deb \
  "$DEBS"/victoria-metrics_"$VICTORIAMETRICS_VERSION"*.deb >/dev/null \
  || { log "trixie no longer has prometheus $PROMETHEUS_VERSION / alertmanager $ALERTMANAGER_VERSION / victoria-metrics $VICTORIAMETRICS_VERSION"; exit 1; }

X=$(mktemp -d)
trap 'rm -rf "$X"' EXIT
for d in "$DEBS"/prometheus_*.deb "$DEBS"/prometheus-alertmanager_*.deb "$DEBS"/promtool_*.deb "$DEBS"/docker-compose_*.deb \
         "$DEBS"/victoria-metrics_"$VICTORIAMETRICS_VERSION"*.deb; do
  dpkg -x "$d" "$X"
done
mkdir -p "$BIN" .tools/docker-cli-plugins
install -m 0755 "$X/usr/bin/prometheus" "$X/usr/bin/promtool" "$X/usr/bin/prometheus-alertmanager" "$X/usr/bin/amtool" "$BIN/"
mv "$BIN/prometheus-alertmanager" "$BIN/alertmanager"
install -m 0755 "$X/usr/bin/victoria-metrics" "$X/usr/bin/vmbackup" "$X/usr/bin/vmrestore" "$BIN/"
echo "$VICTORIAMETRICS_VERSION" >"$BIN/victoria-metrics.version"
install -D -m 0644 -t "$AM_TEMPLATES" "$X$AM_TEMPLATES/default.tmpl" "$X$AM_TEMPLATES/email.tmpl"
install -m 0755 "$X/usr/libexec/docker/cli-plugins/docker-compose" .tools/docker-cli-plugins/
have_all || { log "installed binaries do not report the pinned versions"; exit 1; }
log "prometheus $PROMETHEUS_VERSION, alertmanager $ALERTMANAGER_VERSION, promtool, amtool, victoria-metrics $VICTORIAMETRICS_VERSION (vmbackup, vmrestore), compose v2 in .tools/"
