"""``python -m mobilityd.mikey``: decode, build and derive MIKEY from the command line.

* ``decode MESSAGE|-``: base64 (also ``mikey <base64>`` or a whole ``a=key-mgmt`` line)
  or hex, auto-detected; JSON by default, ``--text`` for people. ``--psk HEX`` verifies
  the MAC (RFC 3830 §5.2) and decrypts the KEMAC (§4.2.3) of a pre-shared key message.
* ``derive``: SRTP master key and salt of one crypto session from a TGK (§4.1.3).
* ``build --mode psk``: a PSK I_MESSAGE (§3.1: HDR, T, RAND, SP, KEMAC with the MAC).

JSON conventions: enumerated fields are code-point names (``"PSK_INIT"``), byte fields
lowercase hex, SSRCs 8 hex digits (as ``build --ssrc`` takes them), other numbers
integers. Exit status: 0 success; 1 the message is malformed or fails verification;
2 bad command-line input. Every failure prints exactly one line on stderr, naming the
problem and, for MIKEY errors, the RFC 3830 §6.12 error type.

This module is the I/O adapter: it reads the clock only when ``build`` is given no
``--timestamp``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import json
import re
import sys
import time
from collections.abc import Sequence
from enum import IntEnum
from typing import Any, NoReturn

from mobilityd.mikey.constants import (
    DataType,
    EncrAlg,
    ErrorType,
    GeneralExtType,
    KeyDataType,
    MacAlg,
    PayloadType,
    TsType,
)
from mobilityd.mikey.errors import MikeyError
from mobilityd.mikey.keys import derive_message_keys, derive_srtp_salt, derive_tek
from mobilityd.mikey.message import MikeyMessage
from mobilityd.mikey.payloads import (
    CommonHeader,
    GeneralExtension,
    Kemac,
    KeyData,
    Payload,
    Rand,
    SecurityPolicy,
    SrtpCsEntry,
    Timestamp,
    encode_key_data_chain,
    parse_key_data_chain,
)
from mobilityd.mikey.protection import compute_mac, decrypt_key_data, encrypt_key_data, verify_mac
from mobilityd.mikey.sdp import decode_key_mgmt, read_sdp_ids

__all__ = ["describe_message", "main", "read_message_text"]

EXIT_MIKEY_ERROR = 1
EXIT_USAGE = 2
NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01 (RFC 5905)
_HEX = re.compile(r"(?:0x)?([0-9a-fA-F]*)")
_PK_DATA_TYPES = {DataType.PK_INIT, DataType.PK_RESP, DataType.RSA_R_INIT, DataType.RSA_R_RESP}
_ENCR_CHOICES = {"null": EncrAlg.NULL, "aes-cm": EncrAlg.AES_CM_128, "aes-kw": EncrAlg.AES_KW_128}


class UsageError(Exception):
    """Bad command-line input (not a MIKEY protocol error)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _fail(f"{self.prog}: error: {message}", EXIT_USAGE)


def _fail(line: str, status: int) -> NoReturn:
    print(line.replace("\n", " "), file=sys.stderr)
    raise SystemExit(status)


# --- input ----------------------------------------------------------------------------


def parse_hex(text: str, what: str) -> bytes:
    """Bytes from hex digits (optional ``0x``, spaces and colons ignored)."""
    cleaned = re.sub(r"[\s:]", "", text)
    match = _HEX.fullmatch(cleaned)
    if match is None or len(match.group(1)) % 2:
        raise UsageError(f"{what} is not an even number of hex digits")
    return bytes.fromhex(match.group(1))


def read_message_text(text: str) -> bytes:
    """Message bytes from hex, base64, ``mikey <base64>`` or an ``a=key-mgmt`` line.

    A MIKEY message starts with version 0x01, so its base64 starts ``AQ``-``AT`` and
    can never be mistaken for hex.
    """
    stripped = text.strip()
    if stripped.startswith(("a=key-mgmt:", "mikey ")):
        return decode_key_mgmt(stripped)
    compact = re.sub(r"\s", "", stripped)
    if compact and re.fullmatch(r"(?:0x)?[0-9a-fA-F]+", compact) and len(compact) % 2 == 0:
        return bytes.fromhex(compact.removeprefix("0x"))
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise MikeyError("input is neither hex nor base64", ErrorType.UNSPECIFIED) from None


# --- rendering ------------------------------------------------------------------------


def _jsonable(value: object) -> Any:
    if isinstance(value, IntEnum):
        return value.name
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def _describe_key_data(item: object) -> dict[str, Any]:
    described: dict[str, Any] = {"type": PayloadType.KEY_DATA.name}
    if not isinstance(item, KeyData):
        described["type"] = PayloadType.ID.name
    described.update(_jsonable(item))
    return described


def _describe_payload(payload: Payload, data_type: DataType) -> dict[str, Any]:
    described: dict[str, Any] = {"type": payload.payload_type.name}
    described.update(_jsonable(payload))
    if isinstance(payload, Timestamp):
        described["value"] = payload.value_bytes.hex()
    if isinstance(payload, GeneralExtension) and payload.ext_type == GeneralExtType.SDP_IDS:
        try:
            described["sdp_ids"] = read_sdp_ids(payload)
        except MikeyError as exc:
            described["sdp_ids_error"] = exc.message
    if isinstance(payload, Kemac) and payload.encr_alg == EncrAlg.NULL:
        first = PayloadType.ID if data_type in _PK_DATA_TYPES else PayloadType.KEY_DATA
        try:
            chain = parse_key_data_chain(payload.encr_data, first=first)
        except MikeyError as exc:
            described["key_data_error"] = str(exc)
        else:
            described["key_data"] = [_describe_key_data(item) for item in chain]
    return described


def describe_message(msg: MikeyMessage) -> dict[str, Any]:
    """The JSON document ``decode`` prints for a message (see the module docstring)."""
    hdr: CommonHeader = msg.header
    return {
        "version": hdr.version,
        "data_type": hdr.data_type.name,
        "next_payload": hdr.next_payload.name,
        "v_flag": hdr.v_flag,
        "prf_func": hdr.prf_func.name,
        "csb_id": hdr.csb_id,
        "cs_id_map_type": hdr.cs_id_map_type.name,
        "cs_map": [
            {"policy": cs.policy_no, "ssrc": f"{cs.ssrc:08x}", "roc": cs.roc} for cs in hdr.cs_map
        ],
        "payloads": [_describe_payload(p, hdr.data_type) for p in msg.payloads],
    }


def _text_lines(value: Any, indent: str) -> list[str]:
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{indent}{key}:")
                lines.extend(_text_lines(item, indent + "  "))
            else:
                lines.append(f"{indent}{key}: {json.dumps(item)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            label = item.get("type", "") if isinstance(item, dict) else ""
            lines.append(f"{indent}[{index}] {label}".rstrip())
            lines.extend(_text_lines(item, indent + "    "))
    else:
        lines.append(f"{indent}{value}")
    return lines


# --- PSK verification -----------------------------------------------------------------


def verify_psk(msg: MikeyMessage, psk: bytes) -> dict[str, Any]:
    """Check the MAC and decrypt the KEMAC of a PSK message (RFC 3830 §3.1, §5.2, §4.2).

    Returns ``{"mac_ok": bool, "keys": [...]}``; a MAC that does not verify raises
    :class:`MikeyError` (AUTH_FAILURE). ``mac_ok`` is false only for a NULL MAC.
    """
    if msg.header.data_type != DataType.PSK_INIT:
        raise MikeyError(
            f"--psk needs a pre-shared key initiator message, not {msg.header.data_type.name}",
            ErrorType.INVALID_DT,
        )
    kemac = msg.require(Kemac)
    rand = msg.require(Rand)
    timestamp = msg.require(Timestamp)
    if msg.payloads[-1] is not kemac:
        raise MikeyError("KEMAC is not the last payload of the PSK message (RFC 3830 §6.2)")
    keys = derive_message_keys(psk, msg.header.csb_id, rand.rand)
    mac_ok = kemac.mac_alg != MacAlg.NULL
    verify_mac(kemac.mac_alg, keys.auth_key, msg.authenticated_bytes(), kemac.mac)
    plaintext = decrypt_key_data(
        kemac.encr_alg, keys, msg.header.csb_id, timestamp.value_bytes, kemac.encr_data
    )
    chain = parse_key_data_chain(plaintext, allow_zero_padding=kemac.encr_alg == EncrAlg.AES_KW_128)
    key_list = [
        {
            "type": item.key_type.name,
            "key": item.key.hex(),
            "salt": None if item.salt is None else item.salt.hex(),
            "kv": _jsonable(item.kv),
        }
        for item in chain
        if isinstance(item, KeyData)
    ]
    return {"mac_ok": mac_ok, "keys": key_list}


# --- commands -------------------------------------------------------------------------


def _cmd_decode(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.message == "-" else args.message
    msg = MikeyMessage.parse(read_message_text(text))
    document = describe_message(msg)
    if args.psk is not None:
        document.update(verify_psk(msg, parse_hex(args.psk, "--psk")))
    if args.text:
        print("\n".join(_text_lines(document, "")))
    else:
        print(json.dumps(document, indent=2))
    return 0


def _cmd_derive(args: argparse.Namespace) -> int:
    tgk = parse_hex(args.tgk, "--tgk")
    rand = parse_hex(args.rand, "--rand")
    key = derive_tek(tgk, args.cs_id, args.csb_id, rand, args.key_len)
    salt = derive_srtp_salt(tgk, args.cs_id, args.csb_id, rand, args.salt_len)
    print(json.dumps({"master_key": key.hex(), "master_salt": salt.hex()}))
    return 0


def _int_list(text: str, what: str, base: int) -> list[int]:
    try:
        values = [int(part, base) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"{what} must be a comma-separated list of numbers") from None
    if any(not 0 <= value <= 0xFFFFFFFF for value in values):
        raise UsageError(f"{what} values must fit in 32 bits")
    return values


def build_psk_message(  # noqa: PLR0917 - mirrors the command line
    psk: bytes,
    csb_id: int,
    tgk: bytes,
    rand: bytes,
    cs_map: Sequence[SrtpCsEntry],
    ntp_timestamp: int,
    encr_alg: EncrAlg = EncrAlg.AES_CM_128,
    v_flag: bool = False,
) -> MikeyMessage:
    """The PSK I_MESSAGE of RFC 3830 §3.1: HDR, T, RAND, SP (SRTP defaults), KEMAC.

    The KEMAC carries one TGK key data sub-payload, encrypted with ``encr_alg`` under
    the §4.1.4 keys of ``psk``; its HMAC-SHA-1-160 MAC covers the whole message (§5.2).
    """
    header = CommonHeader(DataType.PSK_INIT, csb_id, tuple(cs_map), v_flag=v_flag)
    timestamp = Timestamp(TsType.NTP_UTC, ntp_timestamp)
    keys = derive_message_keys(psk, csb_id, rand)
    plaintext = encode_key_data_chain([KeyData(KeyDataType.TGK, tgk)])
    encrypted = encrypt_key_data(encr_alg, keys, csb_id, timestamp.value_bytes, plaintext)
    kemac = Kemac(encr_alg, encrypted, MacAlg.HMAC_SHA1_160, bytes(20))
    unsigned = MikeyMessage.build(
        header, [timestamp, Rand(rand), SecurityPolicy.srtp_defaults(0), kemac]
    )
    mac = compute_mac(MacAlg.HMAC_SHA1_160, keys.auth_key, unsigned.authenticated_bytes())
    return unsigned.with_auth_field(mac)


def _cmd_build(args: argparse.Namespace) -> int:
    if args.mode != "psk":
        raise UsageError(f"--mode {args.mode} is not supported by build (only psk)")
    ssrcs = _int_list(args.ssrc, "--ssrc", 16)
    rocs = _int_list(args.roc, "--roc", 10)
    if len(rocs) == 1:
        rocs = rocs * len(ssrcs)
    if len(rocs) != len(ssrcs):
        raise UsageError("--roc needs one value, or one per --ssrc")
    if len(ssrcs) > 255:
        raise UsageError("at most 255 crypto sessions (#CS is 8 bits)")
    if not 0 <= args.csb_id <= 0xFFFFFFFF:
        raise UsageError("--csb-id must fit in 32 bits")
    rand = parse_hex(args.rand, "--rand")
    if not 1 <= len(rand) <= 255:
        raise UsageError("--rand must be 1 to 255 bytes (16 or more recommended)")
    if args.timestamp is not None:
        stamp = parse_hex(args.timestamp, "--timestamp")
        if len(stamp) != 8:
            raise UsageError("--timestamp must be 16 hex digits (64-bit NTP)")
        ntp = int.from_bytes(stamp, "big")
    else:
        now = time.time() + NTP_UNIX_OFFSET
        ntp = (int(now) << 32) | int((now % 1) * 2**32)
    msg = build_psk_message(
        psk=parse_hex(args.psk, "--psk"),
        csb_id=args.csb_id,
        tgk=parse_hex(args.tgk, "--tgk"),
        rand=rand,
        cs_map=[SrtpCsEntry(0, ssrc, roc) for ssrc, roc in zip(ssrcs, rocs, strict=True)],
        ntp_timestamp=ntp,
        encr_alg=_ENCR_CHOICES[args.encr],
        v_flag=args.verify_request,
    )
    print(base64.b64encode(bytes(msg)).decode("ascii"))
    return 0


def _number(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m mobilityd.mikey", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    decode = commands.add_parser("decode", help="decode a message (base64 or hex) to JSON")
    decode.add_argument("message", help="the message, base64 or hex, or - for stdin")
    decode.add_argument("--text", action="store_true", help="human-readable output")
    decode.add_argument("--psk", help="pre-shared key (hex): verify MAC, decrypt KEMAC")
    decode.set_defaults(run=_cmd_decode)

    derive = commands.add_parser("derive", help="SRTP master key/salt from a TGK (§4.1.3)")
    derive.add_argument("--tgk", required=True, help="TGK (hex)")
    derive.add_argument("--csb-id", required=True, type=_number, help="CSB ID")
    derive.add_argument("--cs-id", required=True, type=_number, help="crypto session (1-based)")
    derive.add_argument("--rand", required=True, help="RAND (hex)")
    derive.add_argument("--key-len", type=_number, default=16, help="master key bytes")
    derive.add_argument("--salt-len", type=_number, default=14, help="master salt bytes")
    derive.set_defaults(run=_cmd_derive)

    build = commands.add_parser("build", help="build a PSK I_MESSAGE (base64)")
    build.add_argument("--mode", required=True, help="key transport method: psk")
    build.add_argument("--psk", required=True, help="pre-shared key (hex)")
    build.add_argument("--csb-id", required=True, type=_number, help="CSB ID")
    build.add_argument("--tgk", required=True, help="TGK (hex)")
    build.add_argument("--rand", required=True, help="RAND (hex)")
    build.add_argument("--ssrc", required=True, help="SSRC per crypto session: HEX[,HEX..]")
    build.add_argument("--roc", required=True, help="ROC per crypto session: N[,N..]")
    build.add_argument("--timestamp", help="NTP-UTC timestamp, 16 hex digits (default: now)")
    build.add_argument("--encr", choices=sorted(_ENCR_CHOICES), default="aes-cm")
    build.add_argument("--verify-request", action="store_true", help="set the V flag")
    build.set_defaults(run=_cmd_build)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except MikeyError as exc:
        _fail(f"error: {exc}", EXIT_MIKEY_ERROR)
    except (UsageError, ValueError) as exc:
        _fail(f"error: {exc}", EXIT_USAGE)
    except BrokenPipeError:  # the reader went away (e.g. `| head`): nothing left to say
        sys.stderr.close()
        return EXIT_MIKEY_ERROR
    return status
