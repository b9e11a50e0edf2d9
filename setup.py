"""Build hook: compiles the SIP core (mobilityd.sip) to C extensions with mypyc.

All project metadata lives in pyproject.toml; this file only adds ``ext_modules``.
The compiled modules are the same type-annotated Python sources (mypy --strict), turned
into CPython extensions by mypyc, which ships with mypy; behaviour is unchanged and the
pure-Python sources remain importable when no extension is built.

Escape hatch: ``MOBILITYD_PURE_PYTHON=1 pip install -e .`` builds nothing and removes
the extensions an earlier build left beside the sources (the SIP core then runs
interpreted; ``mobilityd.sip.sip_core()`` says which form is running).  The modules
share one support library, ``mobilityd/sip/sip_core__mypyc*.so`` (a fixed name inside
the package, so that an editable install finds it and a rebuild replaces it).
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup

GROUP = "mobilityd.sip.sip_core"  # -> mobilityd/sip/sip_core__mypyc*.so

# The SIP hot path: messages, transactions, dialogs and the UA layers (issue 3
# benchmarks a, b, d).  Left interpreted: digest.py (its exception classes override
# class-level status/reason, which mypyc turns into unset instance attributes; digest
# runs only for REGISTER/authenticated requests), sdp.py, registration.py, transport/stream.py
# and transport/tls.py (not on the UAS call path), perf*.py (benchmark scripts),
# ua/memnet.py (test network).
SIP_CORE_MODULES = [
    "mobilityd/sip/errors.py",
    "mobilityd/sip/grammar.py",
    "mobilityd/sip/uri.py",
    "mobilityd/sip/headers.py",
    "mobilityd/sip/message.py",
    "mobilityd/sip/framing.py",
    "mobilityd/sip/events.py",
    "mobilityd/sip/timers.py",
    "mobilityd/sip/dialog.py",
    "mobilityd/sip/transaction/build.py",
    "mobilityd/sip/transaction/facts.py",
    "mobilityd/sip/transaction/layer.py",
    "mobilityd/sip/transaction/machine.py",
    "mobilityd/sip/transaction/outbound.py",
    "mobilityd/sip/transaction/states.py",
    "mobilityd/sip/ua/actions.py",
    "mobilityd/sip/ua/auth.py",
    "mobilityd/sip/ua/config.py",
    "mobilityd/sip/ua/core.py",
    "mobilityd/sip/ua/inbound.py",
    "mobilityd/sip/ua/requests.py",
    "mobilityd/sip/ua/session.py",
    "mobilityd/sip/ua/upcalls.py",
    "mobilityd/sip/endpoint.py",
    "mobilityd/sip/useragent.py",
    "mobilityd/sip/transport/base.py",
    "mobilityd/sip/transport/codec.py",
    "mobilityd/sip/transport/udp.py",
]


def _remove_built_extensions() -> None:
    """Delete the compiled modules an earlier build put beside the sources: Python
    would import them before the ``.py`` files."""
    here = Path(__file__).resolve().parent
    stems = [here / module.removesuffix(".py") for module in SIP_CORE_MODULES]
    stems.append(here / (GROUP.replace(".", "/") + "__mypyc"))
    for stem in stems:
        for built in stem.parent.glob(stem.name + ".*.so"):
            built.unlink()


def _ext_modules() -> list[object]:
    if os.environ.get("MOBILITYD_PURE_PYTHON", "") not in ("", "0"):
        _remove_built_extensions()
        return []
    from mypyc.build import mypycify  # noqa: PLC0415 - needed only when compiling

    return list(mypycify(SIP_CORE_MODULES, opt_level="3", debug_level="0",
                         group_name=GROUP))


setup(ext_modules=_ext_modules())
