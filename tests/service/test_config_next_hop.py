"""``[mobility] resolve_next_hop_ms``: the cap of an optional move's wait for its new
gateway's ARP / neighbor discovery entry (RFC 826, RFC 4861 §7.2; issue 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobilityd.service.config import load_config
from mobilityd.service.errors import ConfigError
from tests.service.conftest import minimal_toml, write_secret


def _config(tmp_path: Path, mobility: str) -> Path:
    write_secret(tmp_path / "alice.psk")
    path = tmp_path / "c.toml"
    text = minimal_toml(tmp_path / "s.sock").split("[sip]")[0]
    path.write_text(text + "\n[mobility]\n" + mobility + "\n")
    return path


def test_default_is_200_ms(tmp_path: Path) -> None:
    assert load_config(_config(tmp_path, "")).mobility.resolve_next_hop_ms == 200.0


@pytest.mark.parametrize("value", [0, 50, 5000])
def test_values_in_range(tmp_path: Path, value: int) -> None:
    config = load_config(_config(tmp_path, f"resolve_next_hop_ms = {value}"))
    assert config.mobility.resolve_next_hop_ms == float(value)


@pytest.mark.parametrize("value", ["-1", "5001", "'fast'"])
def test_bad_values_name_the_key(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_config(tmp_path, f"resolve_next_hop_ms = {value}"))
    assert info.value.key == "mobility.resolve_next_hop_ms", str(info.value)
