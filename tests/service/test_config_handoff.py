"""``[[devices]] handoff = "host:port"``: where a device's hand-off channel is reached.

The value is a ``hostport`` of RFC 3261 §25.1 with the port required (IPv4 address,
``[IPv6]`` address or DNS name); every problem names the file and the dotted key.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mobilityd.service.config import load_config
from mobilityd.service.errors import ConfigError
from tests.service.conftest import minimal_toml, write_secret


def device_toml(name: str, contact: str, handoff: str | None = None) -> str:
    """One ``[[devices]]`` table."""
    line = f"handoff = {handoff!r}\n" if handoff is not None else ""
    return f"\n[[devices]]\nname = {name!r}\ncontact = {contact!r}\n{line}"


def bob_config(tmp_path: Path, devices: str, device: str = "laptop") -> Path:
    """Bob's configuration (one PSK peer) as ``device``, with the ``[[devices]]`` TOML
    ``devices`` and a device secret; written to ``tmp_path / "c.toml"``."""
    text = minimal_toml(tmp_path / "s.sock") + devices
    text = text.replace('display_name = "Bob"', f'display_name = "Bob"\ndevice = "{device}"'
                        '\ndevice_secret_file = "dev.key"')
    write_secret(tmp_path / "dev.key")
    write_secret(tmp_path / "alice.psk")
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def _config(tmp_path: Path, laptop_handoff: str | None, pda_handoff: str | None) -> Path:
    return bob_config(tmp_path, device_toml("laptop", "sip:bob@10.2.0.2:5060", laptop_handoff)
                      + device_toml("pda", "sip:bob@example.org;gr=urn:uuid:1", pda_handoff))


def _error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.file == path.absolute()
    return caught.value


@pytest.mark.parametrize(("value", "expected"), [
    ("10.4.0.2:5070", ("10.4.0.2", 5070)),
    ("[2001:db8::4]:5070", ("2001:db8::4", 5070)),
    ("pda.example.org:65535", ("pda.example.org", 65535)),
    ("pda:1", ("pda", 1)),
])
def test_valid_handoff_addresses(tmp_path: Path, value: str,
                                 expected: tuple[str, int]) -> None:
    config = load_config(_config(tmp_path, None, value))
    laptop, pda = config.devices
    assert laptop.handoff is None  # absent: the SIP port + 10 convention applies
    assert pda.handoff == expected


@pytest.mark.parametrize(("value", "words"), [
    ("10.4.0.2:0", "between 1 and 65535"),
    ("10.4.0.2:65536", "between 1 and 65535"),
    ("10.4.0.2", "host:port"),
    ("10.4.0.2:", "host:port"),
    ("10.4.0.2:50x", "host:port"),
    ("10.4.0.2:-5", "host:port"),
])
def test_bad_port_is_refused(tmp_path: Path, value: str, words: str) -> None:
    err = _error(_config(tmp_path, None, value))
    assert err.key == "devices[1].handoff"
    assert words in err.problem and value in err.problem


@pytest.mark.parametrize(("value", "words"), [
    ("10.4.0.300:5070", "not an IPv4 address"),
    ("[2001:db8::zz]:5070", "not an IPv6 address"),
    ("2001:db8::4:5070", "in brackets"),
    ("pda_1.example.org:5070", "not an IPv4 address or host name"),
    ("-pda.example.org:5070", "not an IPv4 address or host name"),
    (":5070", "not an IPv4 address or host name"),
    ("pda example:5070", "not an IPv4 address or host name"),
])
def test_bad_host_is_refused(tmp_path: Path, value: str, words: str) -> None:
    err = _error(_config(tmp_path, None, value))
    assert err.key == "devices[1].handoff"
    assert words in err.problem


def test_handoff_must_be_a_string(tmp_path: Path) -> None:
    path = _config(tmp_path, None, None)
    path.write_text(path.read_text().replace("gr=urn:uuid:1'\n",
                                             "gr=urn:uuid:1'\nhandoff = 5070\n"))
    err = _error(path)
    assert err.key == "devices[1].handoff" and "string" in err.problem


def test_duplicate_handoff_address_is_refused(tmp_path: Path) -> None:
    err = _error(_config(tmp_path, "10.4.0.2:5070", "10.4.0.2:5070"))
    assert err.key == "devices[1].handoff"
    assert "'laptop'" in err.problem and "10.4.0.2:5070" in err.problem


def test_handoff_key_twice_in_one_device_is_a_toml_error(tmp_path: Path) -> None:
    path = _config(tmp_path, None, "10.4.0.2:5070")
    path.write_text(path.read_text() + "handoff = '10.4.0.2:5071'\n")
    err = _error(path)
    assert err.key is None and "TOML" in err.problem
