"""A hand-off token with every field set (docs/transfer.md, Step 2), shared by the token
and the reliable-channel tests: ``expect_token(**changes)`` overrides single fields."""

from __future__ import annotations

from mobilityd.mobility.transfer import HandOffToken, TokenKind, token_key

KEY = token_key(bytes(range(32)))
NOW = 1_795_000_000.0


def expect_token(**changes: object) -> HandOffToken:
    fields: dict[str, object] = {
        "kind": TokenKind.EXPECT, "issued": NOW, "expires": NOW + 60, "nonce": bytes(16),
        "csb_id": 0xDEADBEEF, "call_id": "c1@laptop", "correspondent": "sip:alice@a.example",
        "sender": "laptop", "receiver": "pda", "correspondent_ssrcs": (7,),
        "released_ssrcs": (1, 2),
    }
    fields.update(changes)
    return HandOffToken(**fields)  # type: ignore[arg-type]
