"""What of ``[[devices]]`` a SIGHUP reload cannot apply to the running transfer agent.

The device list itself applies live: the next ``move`` / ``pull`` uses the new
targets (their GRUU or address, RFC 5627 §3, and hand-off address), moves already
running keep the entry they started with. Two pieces are bound to the hand-off channel,
the UDP socket the daemon opens at start (docs/transfer.md), and wait for a restart:

* ``devices``: the daemon started without another device of the user (or without
  ``identity.device``), so it opened no channel; a reload that adds devices cannot
  make moves work until a restart;
* ``devices.<this device>.handoff``: the port this device's channel listens on changed.

``[registrar]`` too is bound at start (the registration runs from the start-up
configuration, and the registrar is the account's outbound proxy):
:func:`registrar_restart_required` reports ``registrar`` when it was added or removed,
else ``registrar.uri`` / ``registrar.expires`` / ``registrar.username`` /
``registrar.realm`` / ``registrar.password_file`` (the last also when the file is the same
but the password in it changed: the configuration holds the password it read).

All are compared with the configuration the daemon *started* with, so they are reported
on every reload for as long as the file differs from what is running.

``[media]`` applies live, to the next call (:func:`mobilityd.call.manager.media_options_from`:
port range, codec preference, ``a=ptime``); running calls keep their ports and codec.
"""

from __future__ import annotations

from mobilityd.mobility.transfer_config import HANDOFF_PORT_OFFSET
from mobilityd.service.config import Config

__all__ = [
    "device_restart_required",
    "handoff_listen_port",
    "has_handoff_channel",
    "registrar_restart_required",
    "started_restart_required",
]


def has_handoff_channel(config: Config) -> bool:
    """Whether a daemon started with ``config`` opens a hand-off channel: it names this
    device and lists another one (else it only takes transfers of its calls)."""
    own = config.identity.device
    return own is not None and any(d.name != own for d in config.devices)


def handoff_listen_port(config: Config) -> int:
    """The port of this device's hand-off channel: its own ``[[devices]] handoff`` port,
    else ``[sip] port`` + :data:`HANDOFF_PORT_OFFSET`."""
    own = next((d for d in config.devices if d.name == config.identity.device), None)
    if own is not None and own.handoff is not None:
        return own.handoff[1]
    return config.sip.port + HANDOFF_PORT_OFFSET


def device_restart_required(started: Config, new: Config) -> tuple[str, ...]:
    """Dotted keys of ``new``'s ``[[devices]]`` that the daemon started with ``started``
    cannot apply live (module docstring)."""
    if not has_handoff_channel(new):
        return ()  # nothing to move to: the running agent just refuses moves
    if not has_handoff_channel(started):
        return ("devices",)
    if handoff_listen_port(new) != handoff_listen_port(started):
        return (f"devices.{new.identity.device}.handoff",)
    return ()


def registrar_restart_required(started: Config, new: Config) -> tuple[str, ...]:
    """``[registrar]`` keys of ``new`` that differ from what the daemon registered with."""
    before, after = started.registrar, new.registrar
    if before == after:
        return ()
    if before is None or after is None:
        return ("registrar",)
    changed = [name for name in ("uri", "expires", "username", "realm")
               if getattr(before, name) != getattr(after, name)]
    if (before.password_file, before.password) != (after.password_file, after.password):
        changed.append("password_file")
    return tuple(f"registrar.{name}" for name in changed)


def started_restart_required(started: Config, new: Config) -> tuple[str, ...]:
    """Everything of ``new`` bound to what the daemon started with (module docstring)."""
    return (*device_restart_required(started, new), *registrar_restart_required(started, new))

