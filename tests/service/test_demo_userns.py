"""``mobilityd demo`` without root (issue 7): it re-executes itself in an unprivileged
user namespace (``unshare -Urnm``, user_namespaces(7)) and builds the same world there;
when the kernel refuses one it names the setting that refuses and exits 2.

The end-to-end tests run the demo as the user ``nobody`` (``setpriv``, so they need root
to start and are in the ``netns`` tier). ``nobody`` needs an interpreter it may execute
with this virtualenv's packages: the running one if ``nobody`` can execute it, else the
system ``python3`` of the same version with the virtualenv's site-packages on
``PYTHONPATH`` (a virtualenv made from a Python under ``/root`` is not executable by
other users)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from mobilityd.service.demo_userns import UNSHARE, Probe, reexec_argv, userns_refusal
from tests.service.test_demo_png import read_png

REPO = Path(__file__).resolve().parents[2]
AS_NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")


def _nobody_can_run(python: str) -> bool:
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (Debian package util-linux) is needed to run as nobody")
    # exec'd again from nobody's own process, as the demo re-executes itself
    again = "import os, sys; os.execv(sys.executable, [sys.executable, '-c', 'pass'])"
    done = subprocess.run([*AS_NOBODY, python, "-c", again], capture_output=True,
                          check=False, cwd="/")
    return done.returncode == 0


def unprivileged_python() -> tuple[str, str]:
    """(interpreter, PYTHONPATH) for ``nobody`` (module docstring)."""
    site = sysconfig.get_paths()["purelib"]
    readable = subprocess.run([*AS_NOBODY, "test", "-r", str(REPO / "mobilityd" /
                                                            "__init__.py")], check=False)
    if readable.returncode != 0:
        pytest.fail(f"the checkout {REPO} is not readable by the user nobody (clone it "
                    "where other users may read it to test the unprivileged demo)")
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    for python in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        if os.access(site, os.R_OK) and os.path.exists(python) and _nobody_can_run(python):
            return python, os.pathsep.join((str(REPO), site))
    pytest.fail(f"no Python {sys.version_info[0]}.{sys.version_info[1]} that the user "
                "nobody may execute (install Debian's python3 of the same version)")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory ``nobody`` can reach and write (pytest's own tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="mobilityd-userns-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_as_nobody(out: Path, *args: str, path: str | None = None,
                  ) -> subprocess.CompletedProcess[str]:
    python, pythonpath = unprivileged_python()
    env = {"PATH": path or "/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": pythonpath,
           "HOME": "/nonexistent", "LANG": "C.UTF-8"}
    setpriv = shutil.which("setpriv") or "setpriv"
    return subprocess.run([setpriv, *AS_NOBODY[1:], python, "-m", "mobilityd", "demo", "--out",
                           str(out), *args], capture_output=True, text=True, timeout=300,
                          env=env, cwd=out.parent, check=False)


@pytest.mark.netns
def test_demo_as_an_ordinary_user_runs_in_a_user_namespace(shared_dir: Path) -> None:
    if userns_refusal() is not None:
        pytest.fail(f"this kernel refuses user namespaces: {userns_refusal()}")
    out = shared_dir / "demo-out"
    done = run_as_nobody(out)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "unprivileged user namespace (unshare -Urnm)" in done.stdout
    assert "checks: all passed" in done.stdout
    facts = json.loads((out / "summary.json").read_text())
    assert facts["ok"] is True and len(facts["steps"]) == 7
    assert [m["kind"] for m in facts["moves"]["correspondent"]].count("transfer") == 2
    assert "same context: False" not in done.stdout
    width, height, _ = read_png((out / "timeline.png").read_bytes())
    assert width > 1000 and height > 300
    nobody = int(subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True,
                                check=True).stdout)
    for name in ("summary.txt", "timeline.png", "laptop.log"):
        assert (out / name).stat().st_uid == nobody  # the user's files, not root's
    # the namespaces lived in the user namespace only: none is left in the real /run
    leftovers = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                               check=False).stdout
    assert "-laptop" not in leftovers and "-router" not in leftovers


@pytest.mark.netns
def test_demo_as_an_ordinary_user_without_unshare_says_why(shared_dir: Path) -> None:
    empty = shared_dir / "bin"
    empty.mkdir()
    out = shared_dir / "demo-out"
    done = run_as_nobody(out, path=str(empty))  # no unshare on PATH
    assert done.returncode == 2, done.stdout + done.stderr
    assert "not root, and the `unshare` command (Debian package util-linux) is missing" in (
        done.stderr)
    assert "run the demo as root" in done.stderr
    assert not out.exists()


def _proc(tmp_path: Path, knobs: dict[str, str]) -> Path:
    for name, value in knobs.items():
        (tmp_path / "sys" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "sys" / name).write_text(value + "\n")
    return tmp_path


def _probe(code: int, stderr: str = "") -> tuple[list[Sequence[str]], Probe]:
    calls: list[Sequence[str]] = []

    def probe(argv: Sequence[str]) -> tuple[int, str]:
        calls.append(argv)
        return code, stderr

    return calls, probe


def test_refusal_names_max_user_namespaces(tmp_path: Path) -> None:
    calls, probe = _probe(0)
    why = userns_refusal(_proc(tmp_path, {"user/max_user_namespaces": "0"}), probe)
    assert why is not None and "user.max_user_namespaces = 0" in why
    assert "sysctl -w user.max_user_namespaces=" in why and calls == []


def test_refusal_names_debian_unprivileged_userns_clone(tmp_path: Path) -> None:
    _, probe = _probe(0)
    proc = _proc(tmp_path, {"user/max_user_namespaces": "1000",
                            "kernel/unprivileged_userns_clone": "0"})
    why = userns_refusal(proc, probe)
    assert why is not None and "kernel.unprivileged_userns_clone = 0" in why


def test_refusal_reports_the_probe_and_apparmor(tmp_path: Path) -> None:
    calls, probe = _probe(1, "unshare: write failed /proc/self/uid_map: Operation not "
                             "permitted")
    proc = _proc(tmp_path, {"user/max_user_namespaces": "1000",
                            "kernel/apparmor_restrict_unprivileged_userns": "1"})
    why = userns_refusal(proc, probe)
    assert why is not None and "uid_map: Operation not permitted" in why
    assert "apparmor_restrict_unprivileged_userns = 1" in why
    assert calls == [[*UNSHARE, "true"]]


def test_allowed_when_the_knobs_and_the_probe_agree(tmp_path: Path) -> None:
    _, probe = _probe(0)
    proc = _proc(tmp_path, {"user/max_user_namespaces": "1000"})
    assert userns_refusal(proc, probe) is None


def test_reexec_keeps_the_demo_arguments() -> None:
    argv = reexec_argv(["--out", "x", "--keep"])
    assert argv[:5] == ["unshare", "--user", "--map-root-user", "--net", "--mount"]
    assert argv[5:] == ["--", sys.executable, "-m", "mobilityd", "demo", "--out", "x",
                        "--keep"]
