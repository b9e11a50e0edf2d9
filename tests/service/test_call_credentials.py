"""Calls routed through ``[registrar]`` as the outbound proxy carry its digest
credentials: the agent's UA answers the proxy's 407 to an INVITE with them (RFC 3261
§22.3, RFC 7616; the UA side is tested against Kamailio in
tests/sip/test_useragent_auth_kamailio.py)."""

from __future__ import annotations

from pathlib import Path

from mobilityd.call.manager import agent_config_from
from mobilityd.service.config import load_config
from tests.service.conftest import minimal_toml, write_secret

PASSWORD = "proxy-password"


def _config(tmp_path: Path, registrar: str) -> Path:
    write_secret(tmp_path / "alice.psk")
    write_secret(tmp_path / "registrar.pw", PASSWORD + "\n")
    path = tmp_path / "c.toml"
    path.write_text(minimal_toml(tmp_path / "s.sock") + "\n" + registrar)
    return path


def test_registrar_credentials_reach_the_call_agent(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, '[registrar]\nuri = "sip:registrar.example.org"\n'
                                           'password_file = "registrar.pw"\n'))
    agent = agent_config_from(config)
    assert agent.outbound_proxy == "sip:registrar.example.org"
    assert (agent.auth_username, agent.auth_password) == ("bob", PASSWORD)
    assert PASSWORD not in repr(agent)


def test_no_credentials_without_a_password_file_or_registrar(tmp_path: Path) -> None:
    for registrar in ('[registrar]\nuri = "sip:registrar.example.org"\n', ""):
        agent = agent_config_from(load_config(_config(tmp_path, registrar)))
        assert agent.auth_username is None and agent.auth_password is None
