"""mobilityd.sip.

The SIP core may run compiled: ``pip install -e .`` builds the modules listed in
setup.py's ``SIP_CORE_MODULES`` into C extensions with mypyc (same sources, same
behaviour).  `sip_core()` says which form this process runs: ``"mypyc"`` or
``"python"``.  ``MOBILITYD_SIP_CORE=python`` in the environment (read once, when this
package is first imported) makes the process load the Python sources even where the
extensions are built - for instrumentation that wraps methods of these classes
(compiled classes cannot be patched) and for before/after comparisons in one tree.

A source edited after the build (an editable install's ``.py`` newer than its
extension) would otherwise be shadowed by stale compiled code: the whole core then
runs from the sources, with a warning, until ``pip install -e .`` builds it again.

Constructors written out: the dataclasses built for every call (messages, request
facts, the session, its dialog, the events of a call) and the small records built per
message (``TopVia``, ``Outgoing``, ``Upcall``) have an explicit ``__init__`` in their
class body instead of the one ``@dataclass`` (or ``NamedTuple``) generates.  The
generated method is Python source made with ``exec`` when the module loads, so even in
the compiled core it runs interpreted: ~1 µs per object on the bench machine, 12
objects and 6 records per UAS call, 67,000 of the 402,000 machine instructions a call
took (callgrind, ``perf_ua.bench_uas_calls``).  A written-out ``__init__`` is compiled
like the rest (~40 ns).  ``@dataclass`` keeps every written-out ``__init__`` and still
provides ``__eq__``, ``__repr__`` and, for frozen classes, ``__hash__`` and the refusal
to assign from outside; frozen classes assign through ``object.__setattr__``, which
mypyc turns into a plain slot store.  The parameters repeat the fields in order and a
field's default is the parameter's (``None`` stands for a ``default_factory``):
``tests/sip/test_written_constructors.py`` holds every such class to that.  Their
classmethods build with the class's own name, not ``cls(...)``: mypyc compiles a
named constructor to a direct call, ``cls(...)`` to a generic Python call whose
keyword arguments are parsed at run time (~10,000 instructions for ``Dialog``'s).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType

_FORCE_PYTHON = os.environ.get("MOBILITYD_SIP_CORE", "").strip().lower() == "python"


def _stale_extensions(package_dir: str) -> list[str]:
    """The sources under ``package_dir`` changed after their compiled extension."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    stale = []
    for directory, _, files in os.walk(package_dir):
        for name in files:
            if not name.endswith(suffixes):
                continue
            source = os.path.join(directory, name.split(".", 1)[0] + ".py")
            built = os.path.join(directory, name)
            if os.path.exists(source) and os.path.getmtime(source) > os.path.getmtime(built):
                stale.append(source)
    return stale


class _SourceOnlyFinder(importlib.abc.MetaPathFinder):
    """Finds ``mobilityd.sip.*`` modules as ``.py`` sources only, never extensions."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(__name__ + ".") or not path:
            return None
        leaf = fullname.rpartition(".")[2]
        for entry in path:
            for candidate in (os.path.join(entry, leaf + ".py"),
                              os.path.join(entry, leaf, "__init__.py")):
                if os.path.isfile(candidate):
                    is_package = candidate.endswith("__init__.py")
                    return importlib.util.spec_from_file_location(
                        fullname, candidate,
                        submodule_search_locations=[os.path.dirname(candidate)]
                        if is_package else None)
        return None


if not _FORCE_PYTHON and (_stale := _stale_extensions(os.path.dirname(__file__))):
    print(f"mobilityd.sip: {len(_stale)} source(s) newer than the mypyc build (e.g. "
          f"{_stale[0]}): running the Python sources; rebuild with pip install -e .",
          file=sys.stderr)
    _FORCE_PYTHON = True
if _FORCE_PYTHON:
    sys.meta_path.insert(0, _SourceOnlyFinder())


def sip_core() -> str:
    """``"mypyc"`` when the SIP core runs as compiled extensions, else ``"python"``."""
    source = importlib.import_module(__name__ + ".message").__file__ or ""
    return "python" if source.endswith(".py") else "mypyc"
