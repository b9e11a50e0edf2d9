#!/usr/bin/env bash
# The README's first command: install what is needed, then run the demo.
#   scripts/demo.sh [--out DIR] [--log-level debug|info|warning] [--kamailio] [--keep]
# (as root, or as an ordinary user: then in an unprivileged user namespace; --kamailio
# routes everything through Kamailio as registrar and proxy, docs/demo.md)
# Runs scripts/setup.sh (Debian packages when root, .venv, the project), then
# `.venv/bin/mobilityd demo "$@"`; its exit code is this script's exit code
# (0: every check passed, 1: a check failed, 2: the demo could not run, e.g. the kernel
# refuses the unprivileged user namespace it uses without root).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
if [ -x "$here/.venv/bin/mobilityd" ]; then
  exec "$here/.venv/bin/mobilityd" demo "$@"
fi
exec env "PYTHONPATH=$here" "$here/.venv/bin/python" -m mobilityd demo "$@"
