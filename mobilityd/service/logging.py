"""Logging to stderr for journald: ``<N>`` priority prefixes, one line per event.

A line looks like ``<6>call.moved call=c1 old=10.2.0.2:4000 new=10.3.0.7:4000 gap_ms=41.2``:
the sd-daemon(3) priority prefix (journald reads it from stderr and strips it), the
event name, then ``key=value`` fields (values with spaces or quotes are JSON-quoted).

Nothing that could reveal key material reaches the output (:class:`RedactionFilter`):

- ``bytes``-like values, in fields or in ``%`` arguments, print as ``<N bytes redacted>``;
- fields named like key material (``key``, ``psk``, ``tgk``, ``tek``, ``salt``,
  ``secret``...) print as ``<redacted>``;
- the text of every message is searched for the hexadecimal and base64 forms of every
  known secret (:func:`mobilityd.service.keyfiles.known_secrets`), and for the text of
  every registrar password (:func:`~mobilityd.service.keyfiles.known_passwords`), which
  are replaced.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from mobilityd.service.keyfiles import Secret, known_passwords, known_secrets

# sd-daemon(3) / syslog(3) priorities
PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
            logging.CRITICAL: 2}
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}
FIELDS_ATTR = "mobilityd_fields"
SECRET_FIELD = re.compile(r"(^|_)(key|keys|psk|tgk|tek|salt|secret|password|master)(_|$)",
                          re.IGNORECASE)
_PLAIN = re.compile(r"^[^\s\"=]*$")
_MIN_B64_CORE = 12


def log_event(logger: logging.Logger, level: int, event: str, *, call: str | None = None,
              **fields: Any) -> None:
    """Log one event line: ``event call=<call> key=value...``."""
    if logger.isEnabledFor(level):
        ordered = {"call": call, **fields} if call is not None else fields
        logger.log(level, "%s", event, extra={FIELDS_ATTR: ordered})


def secret_forms(secret: bytes) -> set[str]:
    """Text forms under which ``secret`` could appear: hex (both cases) and base64
    (standard and URL-safe, at each of the three byte alignments inside a longer blob)."""
    forms = {secret.hex(), secret.hex().upper()}
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + secret).decode()
        start = -(-offset * 8 // 6)
        end = (offset + len(secret)) * 8 // 6
        core = encoded[start:end]
        if len(core) >= _MIN_B64_CORE:
            forms.update({core, core.replace("+", "-").replace("/", "_")})
    return forms


class RedactionFilter(logging.Filter):
    """Rewrites each record so that no bytes and no known secret reach a handler."""

    def __init__(self, secrets: Iterable[bytes] | None = None) -> None:
        super().__init__()
        self._extra = tuple(secrets or ())

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, FIELDS_ATTR, None)
        if isinstance(fields, dict):
            setattr(record, FIELDS_ATTR, {
                name: "<redacted>" if SECRET_FIELD.search(name) and value is not None
                else _safe_value(value) for name, value in fields.items()})
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            try:
                record.msg = str(record.msg) % tuple(_safe_value(a) for a in args)
            except (TypeError, ValueError):
                record.msg = f"{record.msg} (log arguments did not match the format)"
            record.args = None
        record.msg = self.scrub(str(record.msg))
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True

    def scrub(self, text: str) -> str:
        for password in known_passwords():  # as typed, and as a quoted field shows it
            for form in {password, json.dumps(password, ensure_ascii=False)[1:-1]}:
                if form in text:
                    text = text.replace(form, "<redacted>")
        for secret in (*known_secrets(), *self._extra):
            for form in secret_forms(secret):
                if form in text:
                    text = text.replace(form, "<redacted>")
        return text


class JournalFormatter(logging.Formatter):
    """``<priority>message key=value...``; a multi-line exception keeps the prefix on
    every line so journald files each line at the right priority."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{PRIORITY.get(record.levelno, 6)}>"
        parts = [record.getMessage()]
        fields = getattr(record, FIELDS_ATTR, None)
        if isinstance(fields, dict):
            parts.extend(f"{k}={_render(v)}" for k, v in fields.items())
        elif not record.name.startswith("mobilityd"):
            parts.append(f"logger={record.name}")
        text = " ".join(parts)
        if record.exc_text:
            text += "\n" + record.exc_text
        scrubbed = RedactionFilter().scrub(text)
        return "\n".join(prefix + line for line in scrubbed.splitlines() or [""])


def configure_logging(level: str, stream: TextIO | None = None) -> logging.Handler:
    """Log to ``stream`` (stderr): ``mobilityd.*`` at ``level``, other libraries (asyncio)
    at warning and above; every record passes the :class:`RedactionFilter`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JournalFormatter())
    handler.addFilter(RedactionFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    set_level(level)
    return handler


def set_level(level: str) -> None:
    """Change the level live (SIGHUP reload)."""
    logging.getLogger("mobilityd").setLevel(LEVELS[level])


def _safe_value(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes redacted>"
    if isinstance(value, Secret):
        return repr(value)
    return value


def _render(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, list | tuple):
        value = ",".join(str(v) for v in value)
    text = str(value)
    return text if text and _PLAIN.match(text) else json.dumps(text, ensure_ascii=False)
