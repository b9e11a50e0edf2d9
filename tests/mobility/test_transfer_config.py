"""Transfer settings from the daemon configuration (devices, device secret, AOR).

Hand-off addresses: ``[[devices]] handoff`` if set, else the contact's host and SIP port
(RFC 3261 §19.1.2: 5060 if none) + 10; GRUU contacts (RFC 5627 §3) need ``handoff``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mobilityd.mobility.transfer.errors import TransferUsageError
from mobilityd.mobility.transfer_config import (
    HANDOFF_PORT_OFFSET,
    handoff_address,
    transfer_settings_from,
)
from mobilityd.service.config import Device, load_config
from tests.service.conftest import PSK_HEX
from tests.service.test_config_handoff import bob_config, device_toml

GRUU = "sip:bob@example.org;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
DEVICES = device_toml("laptop", "sip:bob@10.2.0.2:5060") + device_toml("pda", GRUU)


def test_settings_for_the_laptop(tmp_path: Path) -> None:
    config = load_config(bob_config(tmp_path, DEVICES))
    settings = transfer_settings_from(config, handoff_addresses={"pda": ("10.4.0.2", 5070)})
    assert settings is not None
    assert settings.device == "laptop" and settings.user == "sip:bob@example.org"
    assert settings.device_key == bytes.fromhex(PSK_HEX)
    (name,) = settings.devices
    assert name == "pda"
    assert settings.devices["pda"].refer_to == GRUU
    assert settings.devices["pda"].handoff == ("10.4.0.2", 5070)
    assert settings.handoff_port == config.sip.port + HANDOFF_PORT_OFFSET


def test_handoff_address_from_the_contact(tmp_path: Path) -> None:
    devices = (device_toml("laptop", "sip:bob@10.2.0.2:5060")
               + device_toml("pda", "sip:bob@[2001:db8::4]:5062"))
    settings = transfer_settings_from(load_config(bob_config(tmp_path, devices, "pda")))
    assert settings is not None and settings.device == "pda"
    assert settings.devices["laptop"].handoff == ("10.2.0.2", 5070)


def test_contact_without_port_means_5060_plus_offset() -> None:
    assert handoff_address(Device("pda", "sip:bob@[2001:db8::4]")) == ("2001:db8::4", 5070)


def test_configured_handoff_addresses_win(tmp_path: Path) -> None:
    devices = (device_toml("laptop", "sip:bob@10.2.0.2:5060", "10.2.0.2:6001")
               + device_toml("pda", GRUU, "pda.example.org:6002"))
    laptop = transfer_settings_from(load_config(bob_config(tmp_path, devices)))
    assert laptop is not None
    assert laptop.devices["pda"].handoff == ("pda.example.org", 6002)
    assert laptop.devices["pda"].refer_to == GRUU  # the REFER still names the GRUU
    assert laptop.handoff_port == 6001  # its own entry's port is where it listens
    pda = transfer_settings_from(load_config(bob_config(tmp_path, devices, "pda")))
    assert pda is not None
    assert pda.devices["laptop"].handoff == ("10.2.0.2", 6001)
    assert pda.handoff_port == 6002


def test_single_device_has_no_transfer(tmp_path: Path) -> None:
    single = device_toml("laptop", "sip:bob@10.2.0.2")
    assert transfer_settings_from(load_config(bob_config(tmp_path, single))) is None


def test_no_device_name_has_no_transfer(tmp_path: Path) -> None:
    config = load_config(bob_config(tmp_path, DEVICES))
    no_name = replace(config, identity=replace(config.identity, device=None))
    assert transfer_settings_from(no_name) is None


def test_unusable_settings_raise_typed_errors(tmp_path: Path) -> None:
    config = load_config(bob_config(tmp_path, DEVICES))
    no_secret = replace(config, identity=replace(config.identity, device_secret_file=None))
    with pytest.raises(TransferUsageError, match="device_secret_file"):
        transfer_settings_from(no_secret)
    bad = replace(config, devices=(config.devices[0], Device("pda", "bob@nowhere")))
    with pytest.raises(TransferUsageError, match="device pda: bad contact"):
        transfer_settings_from(bad)
