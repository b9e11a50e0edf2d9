"""Transfer settings from the daemon's configuration (for the integrator; issue 6).

:func:`transfer_settings_from` turns ``service.config`` (this device's name, the user's
AOR, the ``[[devices]]`` list with each device's GRUU or address, the device secret
file) into :class:`~mobilityd.mobility.transfer_agent.TransferSettings`. The hand-off
channel of each device is reached at the host of its ``contact`` and ``handoff_port``
(``[[devices]]`` has no hand-off address of its own yet: with a GRUU contact, whose
host is the registrar's domain, pass ``handoff_addresses`` explicitly).
"""

from __future__ import annotations

from collections.abc import Mapping

from mobilityd.mobility.transfer.errors import TransferUsageError
from mobilityd.mobility.transfer_agent import DeviceEntry, TransferSettings
from mobilityd.service.config import Config
from mobilityd.service.keyfiles import read_psk
from mobilityd.sip.errors import SipError
from mobilityd.sip.uri import SipUri

__all__ = ["DEFAULT_HANDOFF_PORT", "transfer_settings_from"]

DEFAULT_HANDOFF_PORT = 5070


def transfer_settings_from(
    config: Config, *, handoff_port: int = DEFAULT_HANDOFF_PORT,
    handoff_addresses: Mapping[str, tuple[str, int]] | None = None,
) -> TransferSettings | None:
    """Settings for this device, or None when it is the user's only device."""
    identity = config.identity
    others = [d for d in config.devices if d.name != identity.device]
    if identity.device is None or not others:
        return None
    if identity.device_secret_file is None:
        raise TransferUsageError("moving calls between devices needs device_secret_file")
    devices = {}
    for device in others:
        address = (handoff_addresses or {}).get(device.name)
        if address is None:
            try:
                address = (SipUri.parse(device.contact).host, handoff_port)
            except SipError as exc:
                raise TransferUsageError(f"device {device.name}: {exc.reason}") from exc
        devices[device.name] = DeviceEntry(device.contact, address)
    return TransferSettings(identity.device, read_psk(identity.device_secret_file).reveal(),
                            identity.uri, devices, handoff_port=handoff_port)
