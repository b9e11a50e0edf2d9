"""Typed errors of the service layer.

Every error says who is at fault and what to answer:

- :class:`ConfigError` -- the configuration file is wrong; it names the file, the dotted
  key and the problem, so ``mobilityd`` can print one actionable line and exit 78
  (``EX_CONFIG``, which systemd shows as "exit-code=78/CONFIG").
- :class:`KeyFileError` -- a key file cannot be used (missing, unreadable, too open,
  malformed); a subclass of :class:`ConfigError` because it is found while loading it.
- :class:`ControlError` -- a control-socket request is refused; it carries the
  :class:`ErrorCode` and, where one is at fault, the request field, which go back to the
  client verbatim (see docs/control-protocol.md).
"""

from __future__ import annotations

import enum
from pathlib import Path


class ErrorCode(enum.StrEnum):
    """Control-protocol error codes (docs/control-protocol.md, "Errors").

    The protocol is JSON, so code points are strings, not integers; a ``StrEnum`` keeps
    the house rule of one enum member per code point.
    """

    BAD_JSON = "bad-json"
    BAD_REQUEST = "bad-request"
    UNSUPPORTED_VERSION = "unsupported-version"
    UNKNOWN_OP = "unknown-op"
    LINE_TOO_LONG = "line-too-long"
    NOT_AVAILABLE = "not-available"
    NO_SUCH_CALL = "no-such-call"
    NO_SUCH_DEVICE = "no-such-device"
    REFUSED = "refused"
    BUSY = "busy"
    INTERNAL = "internal"


class ConfigError(Exception):
    """A configuration problem: ``file``, dotted ``key`` (``None`` for syntax errors)."""

    def __init__(self, file: Path | str, key: str | None, problem: str) -> None:
        self.file = Path(file)
        self.key = key
        self.problem = problem
        where = f"{self.file}: {key}" if key else f"{self.file}"
        super().__init__(f"{where}: {problem}")


class KeyFileError(ConfigError):
    """A key file named by ``key`` in ``file`` cannot be used (``path`` is the key file)."""

    def __init__(self, file: Path | str, key: str | None, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(file, key, f"key file {path}: {problem}")


class ControlError(Exception):
    """A refused control request: ``code`` and optional ``field`` go back to the client."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None) -> None:
        self.code = code
        self.message = message
        self.field = field
        super().__init__(f"{code.value}: {message}" + (f" (field {field!r})" if field else ""))

    def to_json(self) -> dict[str, str]:
        """The ``error`` object of a reply (docs/control-protocol.md, "Errors")."""
        out = {"code": self.code.value, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out
