"""Extract the RFC 4475 torture-test messages into tests/sip/data/rfc4475/<name>.dat.

RFC 4475 Appendix A carries a base64, gzip-compressed tar archive holding every
message of §3 bit-exact; this script decodes it the way the Perl of Figure 58 does
(every line between the archive markers that is a single non-blank word).

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


def main() -> None:
    rfc = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_RFC
    for name in extract(rfc, OUT_DIR):
        print(name)


if __name__ == "__main__":
    main()
