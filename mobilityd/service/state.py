"""What ``status`` reports about the daemon itself (the call part comes from the
:class:`~mobilityd.service.calls.CallManager`).

The clock is injected: the daemon passes ``time.monotonic()`` and ``time.time()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from mobilityd import __version__
from mobilityd.service.config import Config
from mobilityd.service.protocol import PROTOCOL_VERSION


@dataclass(frozen=True)
class ReloadOutcome:
    """Result of one SIGHUP: applied, with the keys that wait for a restart, or failed."""

    at: float
    ok: bool
    restart_required: tuple[str, ...] = ()
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "ok": self.ok, "restart_required": list(self.restart_required),
                "error": self.error}


@dataclass
class DaemonState:
    """Mutable daemon facts, owned by the daemon task (no locking: one event loop)."""

    config: Config
    started_monotonic: float
    started_wall: float
    pid: int = field(default_factory=os.getpid)
    reloads: int = 0
    last_reload: ReloadOutcome | None = None
    pending_restart: tuple[str, ...] = ()

    def record_reload(self, outcome: ReloadOutcome, config: Config | None) -> None:
        """Note a reload; ``config`` is the configuration now in effect (None if the
        reload failed), and ``outcome.restart_required`` lists what the file changes but
        the running daemon still uses from before."""
        self.reloads += 1
        self.last_reload = outcome
        if config is not None:
            self.config = config
            self.pending_restart = outcome.restart_required

    def to_json(self, now_monotonic: float) -> dict[str, Any]:
        cfg = self.config
        return {
            "version": __version__,
            "protocol": PROTOCOL_VERSION,
            "pid": self.pid,
            "uptime_s": round(now_monotonic - self.started_monotonic, 3),
            "started_at": self.started_wall,
            "config": str(cfg.source),
            "identity": {"uri": cfg.identity.uri, "display_name": cfg.identity.display_name,
                         "device": cfg.identity.device},
            "devices": [{"name": d.name, "contact": d.contact} for d in cfg.devices],
            "peers": [{"name": p.name, "uri": p.uri, "contact": p.contact,
                       "key_agreement": p.key_agreement.value} for p in cfg.peers],
            "security_policy": cfg.security.policy.value,
            "log_level": cfg.log.level.value,
            "reloads": self.reloads,
            "last_reload": None if self.last_reload is None else self.last_reload.to_json(),
            "restart_required": list(self.pending_restart),
        }
