"""The seam between the service and the call machinery.

The control server calls a :class:`CallManager`. The daemon runs
:class:`mobilityd.service.calls_roaming.RoamingCallManager` (secure calls on
:mod:`mobilityd.sip` / :mod:`mobilityd.mikey` / :mod:`mobilityd.media`, roaming and
transfer from :mod:`mobilityd.mobility`), which publishes progress as
:mod:`mobilityd.service.events` on the bus. :class:`UnavailableCallManager` (the
default of a bare :class:`~mobilityd.service.daemon.Daemon`, used by tests) answers every
call operation with the ``not-available`` error: nothing pretends to work.

Results are JSON values (docs/control-protocol.md gives their shape). Refusals raise
:class:`~mobilityd.service.errors.ControlError` with the code to answer
(``no-such-call``, ``no-such-device``, ``refused``...).
"""

from __future__ import annotations

from typing import Any, Protocol

from mobilityd.service.config import Config
from mobilityd.service.errors import ControlError, ErrorCode


class CallManager(Protocol):
    """What the control API needs from the call machinery (all coroutines, asyncio)."""

    @property
    def available(self) -> bool: ...

    async def start(self) -> None:
        """Bind transports, read the first netlink dump; READY=1 is sent after this."""

    def reconfigure(self, config: Config) -> None:
        """Take the configuration in effect after a SIGHUP (for new calls)."""

    async def list_calls(self) -> list[dict[str, Any]]: ...

    async def place(self, uri: str, peer: str | None) -> dict[str, Any]: ...

    async def answer(self, call: str) -> dict[str, Any]: ...

    async def reject(self, call: str, reason: str | None) -> dict[str, Any]: ...

    async def hangup(self, call: str) -> dict[str, Any]: ...

    async def move(self, call: str, device: str) -> dict[str, Any]: ...

    async def pull(self, call: str) -> dict[str, Any]: ...

    async def close(self) -> None:
        """End every call (BYE) before the daemon exits."""


class UnavailableCallManager:
    """Stand-in until the call machinery is integrated: refuses every call operation."""

    MESSAGE = ("call handling is not available in this build of mobilityd "
               "(the SIP/MIKEY/media machinery is not integrated yet)")

    @property
    def available(self) -> bool:
        return False

    def _refuse(self) -> ControlError:
        return ControlError(ErrorCode.NOT_AVAILABLE, self.MESSAGE)

    async def list_calls(self) -> list[dict[str, Any]]:
        raise self._refuse()

    async def place(self, uri: str, peer: str | None) -> dict[str, Any]:
        raise self._refuse()

    async def answer(self, call: str) -> dict[str, Any]:
        raise self._refuse()

    async def reject(self, call: str, reason: str | None) -> dict[str, Any]:
        raise self._refuse()

    async def hangup(self, call: str) -> dict[str, Any]:
        raise self._refuse()

    async def move(self, call: str, device: str) -> dict[str, Any]:
        raise self._refuse()

    async def pull(self, call: str) -> dict[str, Any]:
        raise self._refuse()

    async def start(self) -> None:
        return None

    def reconfigure(self, config: Config) -> None:
        return None

    async def close(self) -> None:
        return None
