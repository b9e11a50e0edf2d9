"""``python -m mobilityd.bench NAME [--json] [--quick]``: run one benchmark.

Each benchmark is a module ``mobilityd.bench.NAME`` with ``main(argv) -> int``;
it prints JSON with medians (never asserts on time: the machines are shared).
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("mikey", "sip", "setup", "media", "handover", "transfer")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in BENCHMARKS:
        print(f"usage: python -m mobilityd.bench {{{','.join(BENCHMARKS)}}} [--json] [--quick]",
              file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"mobilityd.bench.{args[0]}")
    except ModuleNotFoundError:
        print(f"benchmark {args[0]!r} is not implemented yet", file=sys.stderr)
        return 2
    result: int = module.main(args[1:])
    return result


if __name__ == "__main__":
    raise SystemExit(main())
