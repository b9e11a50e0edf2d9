#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then
# ruff + mypy --strict on the package, then pytest.
# MOBILITYD_SLOW=1 also runs the slow / exhaustive tier.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bash scripts/setup.sh
export PATH="$here/.venv/bin:$PATH"
echo "== ruff" >&2
ruff check mobilityd tests
echo "== mypy --strict mobilityd" >&2
mypy --strict mobilityd
echo "== pytest" >&2
set +e
python -m pytest "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then echo "pytest: no tests collected" >&2; exit 1; fi
exit "$rc"
