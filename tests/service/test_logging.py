"""Logs: journald priority prefixes, key=value fields, and no key material ever."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator

import pytest

from mobilityd.service.keyfiles import Secret
from mobilityd.service.logging import (
    RedactionFilter,
    configure_logging,
    log_event,
    secret_forms,
)

PLANTED = bytes(range(0xA0, 0xC0))  # 32 "key" bytes, as a TGK or PSK would be


def key_forms(secret: bytes) -> list[str]:
    """Every way a test looks for a leaked key: hex, and base64 at any alignment."""
    forms = [secret.hex(), secret.hex().upper()]
    for pad in range(3):
        text = base64.b64encode(bytes(pad) + secret + bytes(2)).decode()
        forms.append(text[4:-8])  # a stretch of characters that only the key determines
        forms.append(base64.urlsafe_b64encode(bytes(pad) + secret).decode()[4:-4])
    return forms


def assert_no_leak(text: str, secret: bytes) -> None:
    for form in key_forms(secret):
        assert form not in text, f"key material leaked as {form!r}"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging("debug", stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def test_priority_prefix_and_fields(log_output: io.StringIO) -> None:
    log = logging.getLogger("mobilityd.test")
    log_event(log, logging.INFO, "call.moved", call="c1", gap_ms=41.5, old="10.2.0.2:4000",
              reason="new network", note=None)
    log_event(log, logging.WARNING, "config.restart_required", key_path="sip.port")
    log_event(log, logging.DEBUG, "debug.event")
    log_event(log, logging.ERROR, "control.failed")
    lines = log_output.getvalue().splitlines()
    assert lines[0] == ('<6>call.moved call=c1 gap_ms=41.5 old=10.2.0.2:4000 '
                        'reason="new network" note=-')
    assert lines[1].startswith("<4>config.restart_required")
    assert lines[2] == "<7>debug.event"
    assert lines[3] == "<3>control.failed"


def test_level_filters_and_multiline_exception_keeps_prefix(log_output: io.StringIO) -> None:
    logging.getLogger("mobilityd").setLevel(logging.INFO)
    log = logging.getLogger("mobilityd.test")
    log.debug("hidden")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("request failed")
    lines = log_output.getvalue().splitlines()
    assert lines[0] == "<3>request failed"
    assert len(lines) > 2 and all(line.startswith("<3>") for line in lines)
    assert "hidden" not in log_output.getvalue()


def test_bytes_and_secret_named_fields_are_refused(log_output: io.StringIO) -> None:
    log = logging.getLogger("mobilityd.test")
    unknown_key = bytes(range(16, 48))  # not registered anywhere: caught because it is bytes
    log_event(log, logging.DEBUG, "mikey.derived", call="c1", blob=unknown_key,
              tgk="deadbeef" * 8, master_salt=12345, psk=None)
    log.debug("raw %s and %r", unknown_key, bytearray(unknown_key))
    text = log_output.getvalue()
    assert "blob=\"<32 bytes redacted>\"" in text
    assert "tgk=<redacted>" in text and "master_salt=<redacted>" in text
    assert "deadbeef" not in text
    assert "psk=-" in text  # absence of a key is not a secret
    assert "raw <32 bytes redacted> and '<32 bytes redacted>'" in text
    assert_no_leak(text, unknown_key)


def test_known_secrets_are_scrubbed_in_hex_and_base64(log_output: io.StringIO) -> None:
    secret = Secret(PLANTED)  # registers itself with the redaction filter
    log = logging.getLogger("mobilityd.test")
    log.info("hex %s", PLANTED.hex())
    log.info("HEX " + PLANTED.hex().upper())
    for pad in range(3):
        blob = base64.b64encode(bytes(pad) + PLANTED + b"tail").decode()
        log_event(log, logging.INFO, "sdp.offer", key_mgmt=f"mikey {blob}", note=blob)
        log.warning("urlsafe %s", base64.urlsafe_b64encode(bytes(pad) + PLANTED).decode())
    log_event(log, logging.INFO, "peer.loaded", psk_value=secret, value=secret)
    try:
        raise ValueError(f"bad key {PLANTED.hex()}")
    except ValueError:
        log.exception("failure")
    text = log_output.getvalue()
    assert text.count("<redacted>") >= 8
    assert "<secret 32 bytes>" in text
    assert_no_leak(text, PLANTED)


def test_secret_forms_cover_every_alignment() -> None:
    forms = secret_forms(PLANTED)
    for pad in range(3):
        encoded = base64.b64encode(bytes(pad) + PLANTED + b"xyz").decode()
        assert any(form in encoded for form in forms), pad


def test_filter_survives_mismatched_arguments() -> None:
    record = logging.LogRecord("mobilityd.t", logging.INFO, __file__, 1, "%s %s", ("one",),
                               None)
    assert RedactionFilter().filter(record)
    assert "did not match" in str(record.msg)
