"""Fixtures for the service tests: temporary configurations with real key files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

PSK_HEX = "00112233445566778899aabbccddeeff102132435465768798a9babbdcddfe0f"


def write_secret(path: Path, text: str = PSK_HEX + "\n", mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def minimal_toml(socket: Path, extra: str = "", level: str = "info") -> str:
    """A small valid configuration: Bob's laptop with one PSK peer (Alice)."""
    return f"""
[identity]
uri = "sip:bob@example.org"
display_name = "Bob"

[[peers]]
name = "alice"
uri = "sip:alice@10.1.0.2:5060"
psk_file = "alice.psk"

[sip]
bind = "127.0.0.1"
port = 5099

[control]
socket = "{socket}"

[log]
level = "{level}"
{extra}
"""


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    """Write ``mobilityd.toml`` (and ``alice.psk``) in ``tmp_path``; return its path."""

    def make(text: str | None = None, *, level: str = "info") -> Path:
        write_secret(tmp_path / "alice.psk")
        path = tmp_path / "mobilityd.toml"
        path.write_text(text if text is not None
                        else minimal_toml(tmp_path / "control.sock", level=level))
        return path

    return make


from tests.netns import topology  # noqa: E402  (namespace test hosts for the netns tier)

__all__ = ["make_config", "topology"]
