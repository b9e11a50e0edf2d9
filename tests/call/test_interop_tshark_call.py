"""Independent check: Wireshark's SIP, SDP and MIKEY dissectors (tshark) decode a real
secure call of ours, captured on the wire inside a test host.

The INVITE carries the I_MESSAGE and the 200 OK the response, both at session level of
the SDP (RFC 4567 §3.1; the level tshark decodes), with the data types of the key
agreement used (RFC 3830 §6.1 Table 6.1.a), the same CSB ID, and a CS ID map (§6.1.1)
whose SSRCs are the ones the call's media really uses; nothing is malformed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mobilityd.mikey.constants import DataType, ErrorType
from tests.call.capture import captured_call, tshark_json, udp_payloads
from tests.netns import Topology

pytestmark = [pytest.mark.interop, pytest.mark.netns]

FIELDS = ["sip.Method", "sip.Status-Code", "sip.CSeq.method", "mikey.type", "mikey.version",
          "mikey.csb_id", "mikey.cs_count", "mikey.cs_id_map_type", "mikey.srtp_id.ssrc",
          "mikey.srtp_id.roc", "sdp.media.proto", "sdp.media.media"]
EXPECTED_TYPES = {
    "psk": (DataType.PSK_INIT, DataType.PSK_RESP),
    "dh": (DataType.DH_INIT, DataType.DH_RESP),
    "pke": (DataType.PK_INIT, DataType.PK_RESP),
}


def _ssrc_of_rtp(payloads: list[bytes]) -> set[int]:
    """SSRCs of the captured RTP/SRTP packets (RFC 3550 §5.1: bytes 8-11). With
    rtcp-mux the port also carries SRTCP, told apart by its second octet (RFC 5761 §4:
    192-223 is RTCP) and skipped: its bytes 8-11 are encrypted (RFC 3711 §3.4)."""
    return {int.from_bytes(p[8:12], "big") for p in payloads
            if len(p) >= 12 and not 192 <= p[1] <= 223}


@pytest.mark.parametrize("mode", [
    "psk",
    pytest.param("dh", marks=pytest.mark.slow),  # ~13 s each: tshark + RSA keys
    pytest.param("pke", marks=pytest.mark.slow),
])
def test_tshark_decodes_our_secure_call(topology: Topology, tmp_path: Path, mode: str) -> None:
    host = topology.add_host("capture")
    facts, pcap = captured_call(host, tmp_path, mode)
    assert facts["secure"] is True

    mikey = tshark_json(pcap, "mikey", FIELDS)
    assert len(mikey) == 2, f"expected INVITE + 200 OK with MIKEY, got {mikey}"
    invite, ok = mikey
    assert invite["sip.Method"] == ["INVITE"]
    assert ok["sip.Status-Code"] == ["200"] and ok["sip.CSeq.method"] == ["INVITE"]
    init_type, resp_type = EXPECTED_TYPES[mode]
    assert [int(t) for t in invite["mikey.type"]] == [init_type]
    assert [int(t) for t in ok["mikey.type"]] == [resp_type]

    caller_ssrc, callee_ssrc = facts["caller"]["ssrc"], facts["callee"]["ssrc"]
    for message in (invite, ok):
        assert message["mikey.version"] == ["1"]
        assert [int(v, 16) for v in message["mikey.csb_id"]] == [facts["csb_id"]]
        assert message["mikey.cs_count"] == ["2"]
        assert message["mikey.cs_id_map_type"] == ["0"]  # SRTP-ID (§6.1)
        ssrcs = [int(v, 16) for v in message["mikey.srtp_id.ssrc"]]
        assert ssrcs == [caller_ssrc, callee_ssrc] == [e[1] for e in facts["cs_map"]]
        assert [int(v, 16) for v in message["mikey.srtp_id.roc"]] == [0, 0]
        assert message["sdp.media.proto"] == ["RTP/SAVP"]

    # The media on the wire really uses the SSRCs the CS ID map announced.
    forward = udp_payloads(pcap, facts["caller"]["rtp_port"], facts["callee"]["rtp_port"])
    backward = udp_payloads(pcap, facts["callee"]["rtp_port"], facts["caller"]["rtp_port"])
    assert len(forward) > 20 and len(backward) > 20
    assert _ssrc_of_rtp(forward) == {caller_ssrc}
    assert _ssrc_of_rtp(backward) == {callee_ssrc}

    sip = tshark_json(pcap, "sip", ["sip.Method", "sip.Status-Code"])
    methods = [m for layer in sip for m in layer.get("sip.Method", [])]
    assert methods.count("INVITE") == 1 and "ACK" in methods and "BYE" in methods
    assert tshark_json(pcap, "_ws.malformed || _ws.expert.severity == error",
                       ["frame.number"]) == []


def test_tshark_decodes_the_mikey_error_in_a_488(topology: Topology, tmp_path: Path) -> None:
    """Bob's clock is an hour ahead: Alice's I_MESSAGE timestamp is outside his window
    (RFC 3830 §5.4), so he answers 488 carrying a MIKEY error message (§6.12 "Invalid
    TS") in a session-level ``a=key-mgmt`` (RFC 4567 §4.1.2, thesis §11.4). tshark
    decodes it: an error message (data type 6) of the offer's CSB with that error."""
    facts, pcap = captured_call(topology.add_host("capture"), tmp_path, "psk",
                                extra=("--callee-clock-skew", "3600"))
    assert facts["refused"] == 488
    assert facts["callee_sent"] == facts["caller_sees"] == ErrorType.INVALID_TS.name

    mikey = tshark_json(pcap, "mikey", [*FIELDS, "mikey.err.no"])
    assert len(mikey) == 2, mikey
    invite, refusal = mikey
    assert invite["sip.Method"] == ["INVITE"]
    assert [int(t) for t in invite["mikey.type"]] == [DataType.PSK_INIT]
    assert refusal["sip.Status-Code"] == ["488"]
    assert [int(t) for t in refusal["mikey.type"]] == [DataType.ERROR]
    assert [int(v) for v in refusal["mikey.err.no"]] == [ErrorType.INVALID_TS]
    assert [int(v, 16) for v in refusal["mikey.csb_id"]] == [facts["csb_id"]]
    assert [int(v, 16) for v in invite["mikey.csb_id"]] == [facts["csb_id"]]
    assert tshark_json(pcap, "_ws.malformed || _ws.expert.severity == error",
                       ["frame.number"]) == []
