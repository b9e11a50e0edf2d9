"""Transfer settings from the daemon's configuration (for the integrator; issue 6).

:func:`transfer_settings_from` turns ``service.config`` (this device's name, the user's
AOR, the ``[[devices]]`` list with each device's GRUU or address, the device secret
file) into :class:`~mobilityd.mobility.transfer_agent.TransferSettings`, with the
daemon's convention (``service.calls_roaming``): a device's hand-off channel listens
on its SIP port + 10 (:data:`HANDOFF_PORT_OFFSET`) and is reached at the host and
port (default 5060) of its ``contact`` + 10. ``[[devices]]`` has no hand-off address of
its own yet: with a GRUU contact, whose host is the registrar's domain, pass
``handoff_addresses`` explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping

from mobilityd.mobility.transfer.errors import TransferUsageError
from mobilityd.mobility.transfer_agent import DeviceEntry, TransferSettings
from mobilityd.service.config import Config
from mobilityd.service.keyfiles import read_psk
from mobilityd.sip.errors import SipError
from mobilityd.sip.uri import SipUri

__all__ = ["HANDOFF_PORT_OFFSET", "transfer_settings_from"]

HANDOFF_PORT_OFFSET = 10


def transfer_settings_from(
    config: Config, *, handoff_addresses: Mapping[str, tuple[str, int]] | None = None,
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
                uri = SipUri.parse(device.contact)
            except SipError as exc:
                raise TransferUsageError(f"device {device.name}: {exc.reason}") from exc
            address = (uri.host.strip("[]"), (uri.port or 5060) + HANDOFF_PORT_OFFSET)
        devices[device.name] = DeviceEntry(device.contact, address)
    return TransferSettings(identity.device, read_psk(identity.device_secret_file).reveal(),
                            identity.uri, devices,
                            handoff_port=config.sip.port + HANDOFF_PORT_OFFSET)
