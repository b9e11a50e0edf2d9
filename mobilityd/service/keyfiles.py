"""Reading key files safely: permission checks (as ssh does) and a redacting wrapper.

A secret file (PSK, device secret, private key) whose mode lets group or others in
(any bit of ``0o077``) is refused with a message that names the file and its mode, the
way ssh refuses an "UNPROTECTED PRIVATE KEY FILE". Secret bytes are held in
:class:`Secret`, whose ``repr``/``str`` never show the value, so a secret that reaches
a log call by accident prints as ``<secret 32 bytes>``.

PSK file format (docs/configuration.md): the key in hexadecimal on one line; blank
lines and lines starting with ``#`` are ignored. ``mobilityctl keys psk`` writes it.

Password file format (``[registrar] password_file``, the shared secret of HTTP digest
authentication, RFC 3261 §22.1, RFC 7616 §3.4.1): the password as UTF-8 text on the first
line; one trailing newline is ignored, nothing else may follow. Passwords are
registered with :func:`known_passwords` so the log filter redacts their plain text too.
"""

from __future__ import annotations

import binascii
import os
import stat
from pathlib import Path

MIN_PSK_BYTES = 16
"""RFC 3830 §4.2.1 pre-shared keys feed a PRF producing 128-bit keys: fewer is too weak."""
MIN_PASSWORD_CHARS = 6
"""Shorter passwords are refused: the log filter replaces every occurrence of a password's
text, which for a shorter one would mangle ordinary words (and it would be guessable)."""
MAX_PASSWORD_BYTES = 1024


class KeyFileProblem(Exception):
    """Why ``path`` cannot be used; the config loader adds file and key and re-raises."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


_KNOWN_SECRETS: dict[bytes, None] = {}
_KNOWN_PASSWORDS: dict[str, None] = {}


def known_secrets() -> tuple[bytes, ...]:
    """Every secret wrapped in :class:`Secret` so far (the log redaction filter scans
    messages for their hex and base64 forms)."""
    return tuple(_KNOWN_SECRETS)


class Secret:
    """Key material that must never be printed: ``repr`` shows only the length.

    Creating one registers the value with :func:`known_secrets`, so the log filter of
    :mod:`mobilityd.service.logging` can redact it even if it was converted to text.
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = bytes(value)
        _KNOWN_SECRETS[self._value] = None

    def reveal(self) -> bytes:
        """The key bytes, for the one place that needs them (a key derivation)."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"<secret {len(self._value)} bytes>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))


def known_passwords() -> tuple[str, ...]:
    """Every password read by :func:`read_password` so far, as text (the log filter
    redacts them wherever they appear, besides their hex and base64 forms)."""
    return tuple(_KNOWN_PASSWORDS)


def check_public_file(path: Path) -> None:
    """A certificate: must exist, be a regular file and be readable."""
    _regular_readable(path)


def check_private_file(path: Path) -> None:
    """A secret: as :func:`check_public_file`, and no group/other permission bits."""
    mode = _regular_readable(path)
    if mode & 0o077:
        raise KeyFileProblem(
            path,
            f"permissions {mode:04o} are too open: group/others may access it; "
            f"run 'chmod 600 {path}' (refused, as ssh refuses unprotected private keys)",
        )


def read_psk(path: Path) -> Secret:
    """Read a PSK file (hex, see module doc) after :func:`check_private_file`."""
    check_private_file(path)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileProblem(path, f"cannot be read as ASCII text: {exc}") from exc
    lines = [ln.strip() for ln in text.splitlines()]
    payload = "".join(ln for ln in lines if ln and not ln.startswith("#"))
    try:
        value = binascii.unhexlify(payload)
    except (binascii.Error, ValueError):
        raise KeyFileProblem(path, "is not a hexadecimal key (one line of hex digits)") from None
    if len(value) < MIN_PSK_BYTES:
        raise KeyFileProblem(
            path, f"holds {len(value)} bytes; a PSK needs at least {MIN_PSK_BYTES}"
        )
    return Secret(value)


def read_password(path: Path) -> Secret:
    """Read a password file (see module doc) after :func:`check_private_file`; the
    password's UTF-8 bytes come back as a :class:`Secret`."""
    check_private_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KeyFileProblem(path, f"cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_PASSWORD_BYTES:
        raise KeyFileProblem(path, f"is {len(raw)} bytes; a password file holds one line "
                             f"of at most {MAX_PASSWORD_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFileProblem(path, "is not UTF-8 text") from None
    if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    if "\n" in text or "\r" in text:
        raise KeyFileProblem(path, "holds more than one line; put only the password in it")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise KeyFileProblem(path, "holds control characters; a password is printable text")
    if len(text) < MIN_PASSWORD_CHARS:
        raise KeyFileProblem(path, f"holds a password of {len(text)} characters; at "
                             f"least {MIN_PASSWORD_CHARS} are needed")
    _KNOWN_PASSWORDS[text] = None
    return Secret(text.encode("utf-8"))


def _regular_readable(path: Path) -> int:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileProblem(path, "does not exist") from None
    except OSError as exc:
        raise KeyFileProblem(path, f"cannot be examined: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileProblem(path, "is not a regular file")
    if not os.access(path, os.R_OK):
        raise KeyFileProblem(path, f"is not readable by uid {os.geteuid()}")
    return stat.S_IMODE(st.st_mode)
