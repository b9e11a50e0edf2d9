"""Test-only launcher: the real ``mobilityd`` daemon, plus a spy that writes the key
material of every secure call to ``$KEYSPY_OUT`` (hex, one JSON line per call), so that
tests/service/test_log_secrecy.py knows what the logs must never contain.

``python -m tests.service.test_log_secrecy_keyspy --config ... --socket ...``. The spy
wraps ``RoamingCallManager._track`` (called when a call is connected, its MIKEY
context set): TGK (RFC 3830 §4.1.3), each crypto session's SRTP master key and salt, and the
PSK-derived message keys (§4.1.4: encryption, authentication, salt key). Nothing here
is imported by mobilityd itself. (No test functions: pytest collects nothing here.)
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from mobilityd.call.keyload import load_psk
from mobilityd.mikey.context import CryptoContext
from mobilityd.mikey.keys import derive_auth_key, derive_encr_key, derive_salt_key
from mobilityd.service import calls_roaming
from mobilityd.service.daemon import main


def secrets_of(context: CryptoContext, psks: list[bytes]) -> dict[str, str]:
    found = {"tgk": context.tgk.hex()}
    if context.tgk_salt:
        found["tgk_salt"] = context.tgk_salt.hex()
    for cs_id in range(1, len(context.cs_map) + 1):
        key, salt = context.srtp_master(cs_id)
        found[f"tek{cs_id}"], found[f"salt{cs_id}"] = key.hex(), salt.hex()
    for n, psk in enumerate(psks):
        found[f"psk{n}_encr"] = derive_encr_key(psk, context.csb_id, context.rand).hex()
        found[f"psk{n}_auth"] = derive_auth_key(psk, context.csb_id, context.rand).hex()
        found[f"psk{n}_salt"] = derive_salt_key(psk, context.csb_id, context.rand).hex()
    return found


def install_spy(out_path: str) -> None:
    original = calls_roaming.RoamingCallManager._track

    def spying(self: calls_roaming.RoamingCallManager, call: Any) -> None:
        original(self, call)
        context = call.context
        if context is not None:
            psks = [load_psk(p.psk_file) for p in self._config.peers
                    if p.psk_file is not None]
            with open(out_path, "a", encoding="ascii") as out:
                out.write(json.dumps(secrets_of(context, psks)) + "\n")

    calls_roaming.RoamingCallManager._track = spying  # type: ignore[method-assign]


if __name__ == "__main__":
    install_spy(os.environ["KEYSPY_OUT"])
    sys.exit(main(sys.argv[1:]))
