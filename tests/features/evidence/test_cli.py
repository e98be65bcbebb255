"""``minga case attach``, ``minga evidence export`` and ``minga evidence verify`` run where no
node exists: the package is checked with nothing but the package."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.cli import main
from node.core.runtime import open_node
from node.features.evidence.attachments import AttachmentStore
from node.features.evidence.service import custody_log
from tests.features.evidence.c2pa_signing import signed_jpeg
from tests.features.evidence.samples import jpeg_with_gps
from tests.support.api_harness import SAMPLE_CASES, serve_node
from tests.support.offline_node import make_offline_node, passphrase_in_environment

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    path = asyncio.run(make_offline_node(tmp_path / "node"))
    with passphrase_in_environment():
        yield path


def _new_case(config: Path) -> str:
    async def create() -> str:
        async with serve_node(config) as api:
            created = await api.json("POST", "/cases", json=SAMPLE_CASES["cauca"], expect=201)
            return str(created["record_id"])
    return asyncio.run(create())


def _attachment_ids(config: Path, record_id: str) -> list[str]:
    async def listed() -> list[str]:
        async with serve_node(config) as api:
            answer = await api.json("GET", f"/cases/{record_id}/attachments")
            return [item["attachment_id"] for item in answer["items"]]
    return asyncio.run(listed())


def _verify_elsewhere(package: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """``minga evidence verify`` in an empty directory, without any node's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINGA_")}
    env["PYTHONPATH"] = str(REPO)
    workdir.mkdir()
    return subprocess.run([sys.executable, "-m", "node.cli", "evidence", "verify",
                           str(package)], cwd=workdir, env=env, capture_output=True,
                          text=True, check=False, timeout=120)


def test_attach_export_and_verify_with_no_node(config: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    record_id = _new_case(config)
    photo = tmp_path / "foto.jpg"
    photo.write_bytes(jpeg_with_gps())
    assert main(["--config", str(config), "case", "attach", record_id, str(photo)]) == 0
    assert "image/jpeg" in capsys.readouterr().out
    [attachment_id] = _attachment_ids(config, record_id)
    package = tmp_path / "paquete.zip"
    assert main(["--config", str(config), "evidence", "export", attachment_id,
                 "--out", str(package)]) == 0

    checked = _verify_elsewhere(package, tmp_path / "lawyer")
    assert checked.returncode == 0, checked.stderr
    assert "the package verifies" in checked.stdout

    async def org_id() -> str:
        async with open_node(config) as node:
            return node.org_id
    assert asyncio.run(org_id()) in checked.stdout

    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(tampered, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "custody-log.json":
                log = json.loads(data)
                log[0]["at"] += 60
                data = json.dumps(log).encode()
            target.writestr(name, data)
    refused = _verify_elsewhere(tampered, tmp_path / "other")
    assert refused.returncode == 1
    assert "does NOT verify" in refused.stderr and "entry 1" in refused.stderr


def test_attach_to_a_missing_case_says_so(config: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "foto.jpg"
    photo.write_bytes(jpeg_with_gps())
    assert main(["--config", str(config), "case", "attach",
                 "0190a5d2-0000-7000-8000-000000000000", str(photo)]) == 2
    assert "there is no case" in capsys.readouterr().err


def test_check_c2pa_checks_files_stored_before_and_the_package_carries_the_check(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    record_id = _new_case(config)
    photo = tmp_path / "firmada.jpg"
    photo.write_bytes(signed_jpeg())
    assert main(["--config", str(config), "case", "attach", record_id, str(photo)]) == 0
    assert "c2pa valid (signer not on a trust list)" in capsys.readouterr().out
    [attachment_id] = _attachment_ids(config, record_id)
    assert main(["--config", str(config), "evidence", "check-c2pa"]) == 0
    assert "checked 0 of 0" in capsys.readouterr().err  # checked on arrival already

    async def forget_and_count() -> int:
        """Make the file look stored before decision 0031 (no check recorded)."""
        async with open_node(config) as node:
            async with node.store.transaction() as tx:
                await AttachmentStore(tx.session, tx.cipher).set_credentials(
                    attachment_id, None, "c2pa")
            log = await custody_log(node, attachment_id)
        return sum(entry["action"] == "c2pa-check" for entry in log)
    assert asyncio.run(forget_and_count()) == 1

    assert main(["--config", str(config), "evidence", "check-c2pa"]) == 0
    out = capsys.readouterr()
    assert f"{attachment_id}  c2pa valid (signer not on a trust list)" in out.out
    assert "checked 1 of 1" in out.err
    assert main(["--config", str(config), "evidence", "check-c2pa"]) == 0
    assert "checked 0 of 0" in capsys.readouterr().err

    package = tmp_path / "paquete.zip"
    assert main(["--config", str(config), "evidence", "export", attachment_id,
                 "--out", str(package)]) == 0
    with zipfile.ZipFile(package) as archive:
        log = json.loads(archive.read("custody-log.json"))
    checks = [entry for entry in log if entry["action"] == "c2pa-check"]
    assert [check["details"]["verdict"] for check in checks] == ["valid", "valid"]
    checked = _verify_elsewhere(package, tmp_path / "lawyer")
    assert checked.returncode == 0, checked.stderr
    assert "c2pa-check" in checked.stdout
