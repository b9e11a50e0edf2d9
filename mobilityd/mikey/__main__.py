"""Entry point of ``python -m mobilityd.mikey`` (see :mod:`mobilityd.mikey.cli`)."""

from mobilityd.mikey.cli import main

raise SystemExit(main())
