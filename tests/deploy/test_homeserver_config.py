"""The generated Synapse configuration keeps to loopback and to exactly the member servers."""

from __future__ import annotations

import json
from pathlib import Path

from deploy.homeserver import Homeserver, HomeserverState
from deploy.tls import ThrowawayCA


def _config(server: Homeserver) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(server.config_path.read_text())
    return loaded


def test_stand_alone_server_listens_on_loopback_and_never_federates(tmp_path: Path) -> None:
    server = Homeserver.create(tmp_path / "hs", client_port=18008)
    config = _config(server)
    assert config["server_name"] == "localhost:18008"
    assert config["federation_domain_whitelist"] == []
    listeners = config["listeners"]
    assert isinstance(listeners, list)
    assert all(listener["bind_addresses"] == ["127.0.0.1"] for listener in listeners)
    assert config["enable_registration"] is False
    assert config["trusted_key_servers"] == []
    assert config["presence"] == {"enabled": False}
    assert config["rc_message"] == {"per_second": 10_000, "burst_count": 10_000}


def test_federating_server_verifies_certificates_from_the_run_ca(tmp_path: Path) -> None:
    ca = ThrowawayCA(tmp_path / "ca")
    ca.issue_server_certificate(tmp_path / "hs")
    names = ["localhost:1", "localhost:2"]
    state = HomeserverState(
        server_name="localhost:1",
        client_port=3,
        federation_port=1,
        federation_whitelist=names,
        ca_certificate=str(ca.certificate_path),
    )
    server = Homeserver(tmp_path / "hs", state)
    server.write_config()
    config = _config(server)
    assert config["federation_verify_certificates"] is True
    assert config["federation_custom_ca_list"] == [str(ca.certificate_path)]
    assert config["federation_domain_whitelist"] == names
    assert config["ip_range_whitelist"] == ["127.0.0.1/32", "::1/128"]
    tls_listener = config["listeners"][1]  # type: ignore[index]
    assert tls_listener["tls"] is True and tls_listener["port"] == 1


def test_state_survives_reopening(tmp_path: Path) -> None:
    created = Homeserver.create(tmp_path / "hs")
    reopened = Homeserver.open(tmp_path / "hs")
    assert reopened.state == created.state
    signing_key = (tmp_path / "hs" / "signing.key").read_text()
    reopened.write_config()
    assert (tmp_path / "hs" / "signing.key").read_text() == signing_key
