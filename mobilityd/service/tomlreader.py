"""Typed reading of one TOML table with errors that name the file and the dotted key.

:class:`TableReader` wraps a table produced by :mod:`tomllib`; each accessor checks the
type of one key and records that the key was read, and :meth:`TableReader.finish`
refuses keys that nobody read (a typo such as ``grace_peroid`` must not be silently
ignored).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from mobilityd.service.errors import ConfigError

E = TypeVar("E", bound=enum.Enum)
_MISSING: Any = object()


class TableReader:
    """Read typed values from ``table`` found at dotted ``prefix`` of ``file``."""

    def __init__(self, file: Path, table: Mapping[str, Any], prefix: str = "") -> None:
        self.file = file
        self._table = table
        self._prefix = prefix
        self._seen: set[str] = set()
        self._children: dict[str, TableReader] = {}

    def key(self, name: str) -> str:
        """The dotted path of ``name`` inside this table (used in error messages)."""
        return f"{self._prefix}.{name}" if self._prefix else name

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), problem)

    def has(self, name: str) -> bool:
        return name in self._table

    def _get(self, name: str, default: Any) -> Any:
        self._seen.add(name)
        if name in self._table:
            return self._table[name]
        if default is _MISSING:
            raise self.error(name, "is required but missing")
        return default

    def _typed(self, name: str, default: Any, kind: type | tuple[type, ...], what: str) -> Any:
        value = self._get(name, default)
        if value is default and default is not _MISSING:
            return value
        # bool is an int subclass: never accept true for a number or a number for a bool.
        if isinstance(value, bool) and kind is not bool:
            raise self.error(name, f"must be {what}, not a boolean")
        if not isinstance(value, kind):
            raise self.error(name, f"must be {what}, not {_toml_type(value)}")
        return value

    def string(self, name: str, default: Any = _MISSING) -> Any:
        value = self._typed(name, default, str, "a string")
        if self.has(name) and isinstance(value, str) and not value.strip():
            raise self.error(name, "must not be empty")
        return value

    def boolean(self, name: str, default: Any = _MISSING) -> Any:
        return self._typed(name, default, bool, "true or false")

    def integer(self, name: str, default: Any = _MISSING, *, lo: int, hi: int) -> Any:
        value = self._typed(name, default, int, "an integer")
        if isinstance(value, int) and not lo <= value <= hi:
            raise self.error(name, f"must be between {lo} and {hi}, not {value}")
        return value

    def number(self, name: str, default: Any = _MISSING, *, lo: float, hi: float) -> Any:
        value = self._typed(name, default, (int, float), "a number")
        if isinstance(value, int | float) and not lo <= value <= hi:
            raise self.error(name, f"must be between {lo:g} and {hi:g}, not {value:g}")
        return None if value is None else float(value)

    def strings(self, name: str, default: Any = _MISSING) -> Any:
        value = self._typed(name, default, list, "an array of strings")
        if value is default:
            return value
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise self.error(f"{name}[{index}]", "must be a non-empty string")
        return tuple(value)

    def choice(self, name: str, enum_type: type[E], default: Any = _MISSING) -> Any:
        value = self._typed(name, default, str, "a string")
        if value is default:
            return value
        try:
            return enum_type(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in enum_type)
            raise self.error(name, f"must be one of {allowed}, not {value!r}") from None

    def address(self, name: str, default: Any = _MISSING) -> Any:
        value = self.string(name, default)
        if value is default:
            return value
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise self.error(name, f"must be an IPv4 or IPv6 address, not {value!r}") from None
        return value

    def path(self, name: str, default: Any = _MISSING) -> Any:
        """A file path; a relative one is relative to the directory of the config file."""
        value = self.string(name, default)
        if value is default:
            return value
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.file.parent / path)

    def table(self, name: str, *, required: bool = False) -> TableReader:
        """The sub-table ``name`` (an empty one if absent and not ``required``)."""
        if name in self._children:
            return self._children[name]
        value = self._get(name, _MISSING if required else {})
        if not isinstance(value, dict):
            raise self.error(name, f"must be a table, not {_toml_type(value)}")
        child = self._children[name] = TableReader(self.file, value, self.key(name))
        return child

    def tables(self, name: str) -> list[TableReader]:
        value = self._get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(name, f"must be an array of tables ([[{self.key(name)}]])")
        children = [TableReader(self.file, v, f"{self.key(name)}[{i}]")
                    for i, v in enumerate(value)]
        for index, child in enumerate(children):
            self._children[f"{name}[{index}]"] = child
        return children

    def finish(self) -> None:
        """Refuse keys nobody asked for (here and in sub-tables): typos, or options of
        another version."""
        for child in self._children.values():
            child.finish()
        unknown = sorted(set(self._table) - self._seen)
        if unknown:
            raise self.error(unknown[0], "unknown key (misspelt, or in the wrong table?)")


def _toml_type(value: object) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
             list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)
