"""``python -m mobilityd``: the same as the ``mobilityd`` command."""

from mobilityd.service.daemon import main

if __name__ == "__main__":
    raise SystemExit(main())
