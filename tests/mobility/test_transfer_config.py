"""Transfer settings from the daemon configuration (devices, device secret, AOR)."""

from __future__ import annotations

from pathlib import Path

from mobilityd.mobility.transfer_config import transfer_settings_from
from mobilityd.service.config import load_config
from tests.service.conftest import PSK_HEX, minimal_toml, write_secret

DEVICES = """
[[devices]]
name = "laptop"
contact = "sip:bob@10.2.0.2:5060"
[[devices]]
name = "pda"
contact = "sip:bob@example.org;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
"""


def _config(tmp_path: Path, devices: str = DEVICES) -> Path:
    text = minimal_toml(tmp_path / "s.sock") + devices
    text = text.replace('display_name = "Bob"',
                        'display_name = "Bob"\ndevice = "laptop"\ndevice_secret_file = "dev.key"')
    write_secret(tmp_path / "dev.key")
    write_secret(tmp_path / "alice.psk")
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_settings_for_the_laptop(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))
    settings = transfer_settings_from(config, handoff_addresses={"pda": ("10.4.0.2", 5070)})
    assert settings is not None
    assert settings.device == "laptop" and settings.user == "sip:bob@example.org"
    assert settings.device_key == bytes.fromhex(PSK_HEX)
    (name,) = settings.devices
    assert name == "pda"
    assert settings.devices["pda"].refer_to.endswith("gr=urn:uuid:f81d4fae-7dec-11d0-a765-"
                                                     "00a0c91e6bf6")
    assert settings.devices["pda"].handoff == ("10.4.0.2", 5070)
    assert settings.handoff_port == config.sip.port + 10


def test_handoff_address_from_the_contact(tmp_path: Path) -> None:
    devices = DEVICES.replace("gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", "x=1")
    devices = devices.replace("sip:bob@example.org;x=1", "sip:bob@[2001:db8::4]:5062")
    text = _config(tmp_path, devices).read_text().replace('device = "laptop"', 'device = "pda"')
    (tmp_path / "c.toml").write_text(text)
    settings = transfer_settings_from(load_config(tmp_path / "c.toml"))
    assert settings is not None and settings.device == "pda"
    assert settings.devices["laptop"].handoff == ("10.2.0.2", 5070)


def test_single_device_has_no_transfer(tmp_path: Path) -> None:
    single = "\n[[devices]]\nname = 'laptop'\ncontact = 'sip:bob@10.2.0.2'\n"
    assert transfer_settings_from(load_config(_config(tmp_path, single))) is None
