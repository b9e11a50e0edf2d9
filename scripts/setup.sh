#!/usr/bin/env bash
# Installs everything mobilityd's demo and tests need on a fresh Debian 12 machine:
# Debian packages (when run as root), a virtualenv in .venv, the project with its test extras.
# Idempotent: a second run only checks.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

APT_PACKAGES=(
  iproute2            # ip netns, veth, tc netem: the test hosts
  python3-venv
  python3-dev gcc     # headers and compiler: pip install -e . compiles the SIP core (mypyc)
  kamailio kamailio-tls-modules   # registrar / proxy (UDP, TCP, TLS)
  sip-tester          # SIPp: scripted SIP peer and load generator
  tshark              # Wireshark's SIP/SDP/MIKEY dissectors
  python3-gi gir1.2-gst-plugins-base-1.0 gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad   # GStreamer MIKEY codec, srtpdec
  baresip-core        # a plain SIP user agent
  openssl util-linux procps
  systemd             # systemd-analyze verify / security, systemd-sysusers (unit checks)
  python3-seccomp     # reproduces the unit's SystemCallFilter in the restricted-daemon test
)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "setup: not root (or no apt-get): skipping Debian packages; tests needing them will say so" >&2
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.mobilityd-installed
# rebuilt when the build inputs or a compiled SIP source changed (setup.py lists them;
# a stale extension would otherwise leave the core running from the sources, slower)
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ] \
    || [ -n "$(find mobilityd/sip -name '*.py' -newer "$stamp" -print -quit)" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[test]"
  touch "$stamp"
fi
echo "setup: ready (.venv)" >&2
