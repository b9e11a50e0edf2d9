"""Extract the RFC 4475 torture-test messages into tests/sip/data/rfc4475/<name>.dat.

RFC 4475 Appendix A carries a base64, gzip-compressed tar archive holding every
message of §3 bit-exact; this script decodes it the way the Perl of Figure 58 does
(every line between the archive markers that is a single non-blank word).  The files
come from that archive, which RFC 4475 §2 names as the reference.

`messages_from_text` reads the same messages from the text of §3 instead, honouring
the markup of §2 (<allOneLine>, <hex>, <repeat count=N>) and dropping page breaks;
the tests compare both renderings.

Usage:  python tests/sip/data/extract_rfc4475.py [/work/shared/rfc/rfc4475.txt]
"""

from __future__ import annotations

import base64
import io
import re
import sys
import tarfile
from pathlib import Path

DEFAULT_RFC = Path("/work/shared/rfc/rfc4475.txt")
OUT_DIR = Path(__file__).resolve().parent / "rfc4475"
_WORD_LINE = re.compile(r"^\s*\S+\s*$")


def archive_bytes(rfc_text: str) -> bytes:
    """The decoded archive of RFC 4475 Appendix A.1."""
    inside = False
    chunks: list[str] = []
    for line in rfc_text.splitlines():
        marker = line.strip()
        if marker == "-- BEGIN MESSAGE ARCHIVE --":
            inside = True
        elif marker == "-- END MESSAGE ARCHIVE --":
            break
        elif inside and _WORD_LINE.match(line):
            chunks.append(marker)
    return base64.b64decode("".join(chunks))


def extract(rfc_path: Path, out_dir: Path) -> list[str]:
    """Write each ``<name>.dat`` of the archive to ``out_dir``; return the names."""
    data = archive_bytes(rfc_path.read_text(encoding="ascii", errors="replace"))
    out_dir.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            if not member.isfile() or not member.name.endswith(".dat"):
                continue
            handle = archive.extractfile(member)
            if handle is None:
                continue
            name = Path(member.name).name
            (out_dir / name).write_bytes(handle.read())
            names.append(name)
    return sorted(names)


_PAGE_FOOTER = re.compile(r"^Sparks, et al\..*\[Page \d+\]$")
_DETAILS = re.compile(r"^\s+Message Details : (\S+)$")
_HEX = re.compile(r"<hex>([0-9A-Fa-f]*)</hex>")
_HEX_BLOCK = re.compile(r"<hex>(.*?)</hex>", re.S)  # a block may span lines
_REPEAT = re.compile(r"<repeat count=(\d+)>((?:(?!<repeat).)*?)</repeat>", re.S)


def _without_page_breaks(lines: list[str]) -> list[str]:
    """Drop the footer, form feed and running header of each page break, and the
    blank lines the page layout adds around them."""
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not _PAGE_FOOTER.match(line):
            out.append(line)
            index += 1
            continue
        while out and not out[-1].strip():
            out.pop()
        index += 1
        while index < len(lines) and not lines[index].startswith("RFC 4475"):
            index += 1
        index += 1
        while index < len(lines) and not lines[index].strip():
            index += 1
    return out


def _render(block: list[str]) -> bytes:
    """One message from its indented text lines (RFC 4475 §2.1 - §2.3 markup)."""
    out: list[str] = []
    joined: list[str] | None = None
    for line in block:
        text = line[6:] if line.startswith("      ") else line.strip()
        if text.strip() == "<allOneLine>":
            joined = []
        elif text.strip() == "</allOneLine>":
            out.append("".join(joined or []))
            joined = None
        elif joined is not None:
            joined.append(text)
        else:
            out.append(text)
    data = "\r\n".join(out) + "\r\n"
    data = _HEX_BLOCK.sub(lambda m: "<hex>" + "".join(m.group(1).split()) + "</hex>", data)
    while "<repeat" in data:
        data = _REPEAT.sub(lambda m: m.group(2) * int(m.group(1)), data)
    raw = bytearray()
    pieces = _HEX.split(data)
    for position, piece in enumerate(pieces):
        raw += bytes.fromhex(piece) if position % 2 else piece.encode("utf-8")
    return bytes(raw)


def messages_from_text(rfc_text: str) -> dict[str, bytes]:
    """Every "Message Details" sample of RFC 4475 §3, rendered from the text.

    Trailing empty lines cannot be told from page layout, so compare these with the
    archive files after stripping trailing CR/LF.
    """
    lines = _without_page_breaks(rfc_text.split("\n"))
    found: dict[str, bytes] = {}
    index = 0
    while index < len(lines):
        match = _DETAILS.match(lines[index])
        index += 1
        if not match:
            continue
        block: list[str] = []
        while index < len(lines):
            line = lines[index]
            if re.match(r"^\d+\.|^   \S", line) or _DETAILS.match(line):
                break
            block.append(line)
            index += 1
        while block and not block[0].strip():
            block.pop(0)
        while block and not block[-1].strip():
            block.pop()
        found[match.group(1)] = _render(block)
    return found


def main() -> None:
    rfc = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_RFC
    for name in extract(rfc, OUT_DIR):
        print(name)


if __name__ == "__main__":
    main()
