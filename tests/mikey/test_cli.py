"""``python -m mobilityd.mikey`` driven as a subprocess (issue 2, the CLI).

Expected numbers come from tests/mikey/data/gen_cli_vectors.py, written from the RFC
text without importing mobilityd (RFC 3830 §4.1.2-§4.1.4, §4.2.3-§4.2.4, §6).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import pytest

PSK = "000102030405060708090a0b0c0d0e0f"
BUILD_ARGS = [
    "build", "--mode", "psk", "--psk", PSK, "--csb-id", "0x1234",
    "--tgk", "11" * 16, "--rand", "22" * 16, "--ssrc", "deadbeef,cafebabe", "--roc", "0,5",
    "--timestamp", "e7c3a1b2a1a2a3a4",
]  # fmt: skip
# gen_cli_vectors.py "build <encr>" lines (RFC 3830 §3.1 PSK I_MESSAGE).
EXPECTED_BUILD = {
    "null": "AQAFAAAAEjQCAADerb7vAAAAAADK/rq+AAAABQsA58OhsqGio6QKECIiIiIiIiIiIiIiIiIiIiIBAAAAJwAB"
    "AQEBEAIBAQMBFAQBDgUBAAYBAAcBAQgBAQkBAAoBAQsBCgwBAAAAABQAAAAQEREREREREREREREREREREQG4"
    "9+Wvg6+M6YMuwf2w1yTUaTO4pg==",
    "aes-cm": "AQAFAAAAEjQCAADerb7vAAAAAADK/rq+AAAABQsA58OhsqGio6QKECIiIiIiIiIiIiIiIiIiIiIBAAAA"
    "JwABAQEBEAIBAQMBFAQBDgUBAAYBAAcBAQgBAQkBAAoBAQsBCgwBAAABABRJ/o9yC8pcFzRfxoD1EF1FcMaC5wFg"
    "wmtqyEisWrbfq+h6bpB2yGlf4g==",
    "aes-kw": "AQAFAAAAEjQCAADerb7vAAAAAADK/rq+AAAABQsA58OhsqGio6QKECIiIiIiIiIiIiIiIiIiIiIBAAAA"
    "JwABAQEBEAIBAQMBFAQBDgUBAAYBAAcBAQgBAQkBAAoBAQsBCgwBAAACACADa7+0w9veURuFoFOrzSbmcLq4vOPk"
    "beQtWvryCHQuSwHXyiKloSyU+nporO+DX4E+KBAA/Q==",
}


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mobilityd.mikey", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok_json(*args: str, stdin: str | None = None) -> Any:
    result = run_cli(*args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], status: int, *words: str
) -> None:
    assert result.returncode == status
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize(
    ("cs_id", "key", "salt"),
    [
        ("1", "134d0fef5934766c24d7a695af4f294f", "6633d13a2588b0ae600c942638d5"),
        ("2", "71d7a9f1bbe687643c9b072823c5624a", "fc415a4dd3ad6106fb354338f09f"),
    ],
)
def test_derive_rfc3830_4_1_3(cs_id: str, key: str, salt: str) -> None:
    tgk, rand = bytes(range(16)).hex(), bytes(range(0xF0, 0x100)).hex()
    out = ok_json("derive", "--tgk", tgk, "--csb-id", "305419896", "--cs-id", cs_id, "--rand", rand)
    assert out == {"master_key": key, "master_salt": salt}


def test_derive_long_tgk_and_key_len_rfc3830_4_1_2() -> None:
    out = ok_json(
        "derive", "--tgk", bytes(range(40)).hex(), "--csb-id", "0xffffffff", "--cs-id", "3",
        "--rand", bytes(range(0xF0, 0x100)).hex(), "--key-len", "32", "--salt-len", "14",
    )  # fmt: skip
    assert out == {
        "master_key": "869bcea54e3004b4987f98505201bb9aec9671e180436266ec117e886329212a",
        "master_salt": "65cc2f12cd5150383674cd4a35d7",
    }


@pytest.mark.parametrize("encr", ["null", "aes-cm", "aes-kw"])
def test_build_matches_independent_encoding(encr: str) -> None:
    first = run_cli(*BUILD_ARGS, "--encr", encr)
    second = run_cli(*BUILD_ARGS, "--encr", encr)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == EXPECTED_BUILD[encr]
    assert first.stdout == second.stdout  # same inputs, same bytes


def test_build_default_encryption_is_aes_cm() -> None:
    assert run_cli(*BUILD_ARGS).stdout.strip() == EXPECTED_BUILD["aes-cm"]


def test_decode_json_top_level_fields() -> None:
    doc = ok_json("decode", EXPECTED_BUILD["aes-cm"])
    assert doc["data_type"] == "PSK_INIT"
    assert doc["csb_id"] == 0x1234
    assert doc["cs_map"] == [
        {"policy": 0, "ssrc": "deadbeef", "roc": 0},
        {"policy": 0, "ssrc": "cafebabe", "roc": 5},
    ]
    assert [p["type"] for p in doc["payloads"]] == ["T", "RAND", "SP", "KEMAC"]
    t, rand, sp, kemac = doc["payloads"]
    assert t == {
        "type": "T",
        "ts_type": "NTP_UTC",
        "value": "e7c3a1b2a1a2a3a4",
        "next_payload": "RAND",
    }
    assert rand["rand"] == "22" * 16
    assert sp["prot_type"] == "SRTP"
    assert {"param_type": "AUTH_TAG_LEN", "value": "0a"} in sp["params"]
    assert len(sp["params"]) == 13
    assert kemac["encr_alg"] == "AES_CM_128"
    assert kemac["mac_alg"] == "HMAC_SHA1_160"
    assert len(kemac["mac"]) == 40
    assert "mac_ok" not in doc


@pytest.mark.parametrize("encr", ["null", "aes-cm", "aes-kw"])
def test_decode_with_psk_verifies_and_decrypts(encr: str) -> None:
    doc = ok_json("decode", "--psk", PSK, EXPECTED_BUILD[encr])
    assert doc["mac_ok"] is True
    assert doc["keys"] == [{"type": "TGK", "key": "11" * 16, "salt": None, "kv": None}]


def test_decode_null_encryption_shows_key_data_without_psk() -> None:
    doc = ok_json("decode", EXPECTED_BUILD["null"])
    kemac = doc["payloads"][-1]
    assert kemac["key_data"][0]["key_type"] == "TGK"
    assert kemac["key_data"][0]["key"] == "11" * 16


def test_decode_accepts_hex_stdin_and_key_mgmt_line() -> None:
    raw = base64.b64decode(EXPECTED_BUILD["aes-cm"])
    reference = ok_json("decode", EXPECTED_BUILD["aes-cm"])
    assert ok_json("decode", raw.hex()) == reference
    assert ok_json("decode", "-", stdin=raw.hex().upper() + "\n") == reference
    assert ok_json("decode", "-", stdin=EXPECTED_BUILD["aes-cm"] + "\n") == reference
    line = "a=key-mgmt:mikey " + EXPECTED_BUILD["aes-cm"]
    assert ok_json("decode", line) == reference


def test_decode_text_is_human_readable() -> None:
    result = run_cli("decode", "--text", "--psk", PSK, EXPECTED_BUILD["aes-cm"])
    assert result.returncode == 0, result.stderr
    assert 'data_type: "PSK_INIT"' in result.stdout
    assert "[3] KEMAC" in result.stdout
    assert 'ssrc: "cafebabe"' in result.stdout
    assert "mac_ok: true" in result.stdout


def test_wrong_psk_fails_verification_in_one_line() -> None:
    result = run_cli("decode", "--psk", "ff" * 16, EXPECTED_BUILD["aes-cm"])
    assert_one_line_error(result, 1, "MAC", "AUTH_FAILURE")


def test_tampered_message_fails_verification() -> None:
    raw = bytearray(base64.b64decode(EXPECTED_BUILD["null"]))
    raw[30] ^= 1  # inside the RAND: the MAC covers the whole message (RFC 3830 §5.2)
    result = run_cli("decode", "--psk", PSK, raw.hex())
    assert_one_line_error(result, 1, "AUTH_FAILURE")


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (base64.b64decode(EXPECTED_BUILD["aes-cm"])[:-3].hex(), ("truncated", "UNSPECIFIED")),
        ("0163000000000001" + "0000", ("data type", "INVALID_DT")),
        ("not a message!", ("neither hex nor base64", "UNSPECIFIED")),
        ("mikey @@@@", ("base64", "UNSPECIFIED")),
        (base64.b64decode(EXPECTED_BUILD["aes-cm"]).hex() + "00", ("trailing", "UNSPECIFIED")),
    ],
)
def test_malformed_input_is_one_line_with_error_type(message: str, words: tuple[str, ...]) -> None:
    assert_one_line_error(run_cli("decode", message), 1, *words)


def test_psk_on_a_non_psk_message_is_refused() -> None:
    dh_like = "01040000000000010000"  # HDR only, data type D-H init
    assert_one_line_error(run_cli("decode", "--psk", PSK, dh_like), 1, "INVALID_DT")


@pytest.mark.parametrize(
    "args",
    [
        ["derive", "--tgk", "1"],
        ["derive", "--tgk", "xyz", "--csb-id", "1", "--cs-id", "1", "--rand", "00"],
        ["derive", "--tgk", "00", "--csb-id", "x", "--cs-id", "1", "--rand", "00"],
        ["derive", "--tgk", "00", "--csb-id", "1", "--cs-id", "300", "--rand", "00"],
        [*BUILD_ARGS[:2], "dh", *BUILD_ARGS[3:]],
        [*BUILD_ARGS, "--encr", "des"],
        [*BUILD_ARGS[:-1], "abcd"],
        [*BUILD_ARGS[:-6], "--ssrc", "1,2", "--roc", "1,2,3", "--timestamp", "00" * 8],
        [*BUILD_ARGS[:-6], "--ssrc", "zz", "--roc", "1", "--timestamp", "00" * 8],
        ["frobnicate"],
        [],
    ],
)
def test_bad_command_line_is_one_line_exit_2(args: list[str]) -> None:
    assert_one_line_error(run_cli(*args), 2, "error")


def test_decode_psk_with_null_mac_reports_mac_not_checked() -> None:
    from mobilityd.mikey.constants import DataType, EncrAlg, KeyDataType, MacAlg, TsType
    from mobilityd.mikey.message import MikeyMessage
    from mobilityd.mikey.payloads import (
        CommonHeader,
        Kemac,
        KeyData,
        Rand,
        Timestamp,
        encode_key_data_chain,
    )

    chain = encode_key_data_chain([KeyData(KeyDataType.TGK_SALT, b"\x01" * 16, b"\x02" * 14)])
    msg = MikeyMessage.build(
        CommonHeader(DataType.PSK_INIT, 1),
        [Timestamp(TsType.NTP_UTC, 1), Rand(b"\x03" * 16),
         Kemac(EncrAlg.NULL, chain, MacAlg.NULL, b"")],
    )  # fmt: skip
    doc = ok_json("decode", "--psk", PSK, bytes(msg).hex())
    assert doc["mac_ok"] is False  # RFC 3830 §4.2.4: a NULL MAC authenticates nothing
    assert doc["keys"] == [{"type": "TGK_SALT", "key": "01" * 16, "salt": "02" * 14, "kv": None}]


def test_help_lists_the_three_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("decode", "derive", "build"):
        assert command in result.stdout
