"""agents/: the three example configurations load with the real loader once
agents/make-keys.sh has created their keys with mobilityctl."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from mobilityd.service.config import KeyAgreement, load_config
from mobilityd.service.keyfiles import read_psk
from mobilityd.service.keys import certificate_sip_uris
from tests.service.daemon_harness import REPO

AGENTS = REPO / "agents"


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("agents") / "agents"
    shutil.copytree(AGENTS, copy, ignore=shutil.ignore_patterns("keys", "ca"))
    ctl = f"env PYTHONPATH={REPO} {sys.executable} -m mobilityd.service.ctl"
    out = subprocess.run(["bash", str(copy / "make-keys.sh")], capture_output=True, text=True,
                         timeout=300, check=False, env={**os.environ, "MOBILITYCTL": ctl})
    assert out.returncode == 0, out.stderr
    return copy


def test_all_three_load(agents: Path) -> None:
    alice = load_config(agents / "correspondent" / "mobilityd.toml")
    laptop = load_config(agents / "laptop" / "mobilityd.toml")
    pda = load_config(agents / "pda" / "mobilityd.toml")
    assert alice.identity.uri == "sip:alice@example.net"
    assert laptop.identity.uri == pda.identity.uri == "sip:bob@example.org"
    assert (laptop.identity.device, pda.identity.device) == ("laptop", "pda")
    assert laptop.devices == pda.devices
    assert alice.peer("bob") is not None and laptop.peer("alice") is not None
    assert alice.peers[0].key_agreement is KeyAgreement.PSK
    assert alice.registrar is None  # direct addressing: no registrar needed


def test_shared_secrets_match_and_certificates_name_the_user(agents: Path) -> None:
    alice_side = read_psk(agents / "correspondent" / "keys" / "bob.psk")
    for device in ("laptop", "pda"):
        assert read_psk(agents / device / "keys" / "alice.psk") == alice_side
    assert (read_psk(agents / "laptop" / "keys" / "device.key")
            == read_psk(agents / "pda" / "keys" / "device.key"))
    for agent, name, uri in (("correspondent", "alice", "sip:alice@example.net"),
                             ("laptop", "laptop", "sip:bob@example.org"),
                             ("pda", "pda", "sip:bob@example.org")):
        cert = x509.load_pem_x509_certificate((agents / agent / "keys" / f"{name}.crt")
                                              .read_bytes())
        assert certificate_sip_uris(cert) == [uri]
        assert (agents / agent / "keys" / f"{name}.key").stat().st_mode & 0o077 == 0


def test_make_keys_is_idempotent(agents: Path) -> None:
    before = (agents / "laptop" / "keys" / "device.key").read_bytes()
    out = subprocess.run(["bash", str(agents / "make-keys.sh")], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0 and "already exist" in out.stderr
    assert (agents / "laptop" / "keys" / "device.key").read_bytes() == before


def test_mobilityd_check_accepts_each_agent(agents: Path) -> None:
    for agent in ("correspondent", "laptop", "pda"):
        out = subprocess.run([sys.executable, "-m", "mobilityd", "check", "--config",
                              str(agents / agent / "mobilityd.toml")], capture_output=True,
                             text=True, cwd=REPO, timeout=60, check=False)
        assert out.returncode == 0, out.stderr


def test_committed_configs_document_every_table() -> None:
    for agent in ("correspondent", "laptop", "pda"):
        text = (AGENTS / agent / "mobilityd.toml").read_text()
        for table in ("[identity]", "[[peers]]", "[ca]", "[security]", "[sip]", "[media]",
                      "[mobility]", "[control]", "[log]", "registrar"):
            assert table in text, (agent, table)
        comments = [ln for ln in text.splitlines() if ln.lstrip().startswith("#")]
        assert len(comments) >= 10, agent


@pytest.mark.parametrize("agent", ["laptop", "pda"])
def test_the_commented_registrar_example_is_a_valid_configuration(agents: Path,
                                                                   agent: str) -> None:
    """Uncommenting the ``[registrar]`` example (with its credentials) gives a
    configuration that loads: the keys and values shown are the documented ones."""
    config_path = agents / agent / "mobilityd.toml"
    lines = config_path.read_text().splitlines()
    start = lines.index("# [registrar]")
    example = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        if (line.startswith("# ") and "=" in line) or line == "# [registrar]":
            example.append(line[2:])
    assert [ln.split(" =")[0] for ln in example] == [
        "[registrar]", "uri", "expires", "password_file", "username", "realm"]
    password = agents / agent / "keys" / "registrar.password"
    password.write_text("example password\n")
    os.chmod(password, 0o600)
    uncommented = agents / agent / "with-registrar.toml"
    uncommented.write_text("\n".join(lines) + "\n" + "\n".join(example) + "\n")
    config = load_config(uncommented)
    assert config.registrar is not None
    assert (config.registrar.uri, config.registrar.username, config.registrar.realm) == (
        "sip:example.org", "bob", "example.org")
    assert config.registrar.password_file == password
