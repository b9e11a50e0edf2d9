"""``mobilityd --version`` names the version and which SIP core runs (mypyc or python)."""

from __future__ import annotations

import re
import subprocess
import sys

from mobilityd import __version__
from mobilityd.sip import sip_core


def test_version_says_which_sip_core_runs() -> None:
    program = "from mobilityd.service.daemon import main; raise SystemExit(main())"
    out = subprocess.run([sys.executable, "-c", program, "--version"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert re.fullmatch(rf"mobilityd {re.escape(__version__)} \(SIP core: (mypyc|python)\)\n",
                        out)
    assert sip_core() in out
