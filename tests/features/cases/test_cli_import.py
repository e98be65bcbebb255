"""``minga import`` run again on the same spreadsheet: the check says of every row whether it is
new, updated or unchanged, and nothing is duplicated (M16)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.cli import main
from node.core.runtime import open_node
from tests.support import DATA
from tests.support.offline_node import make_offline_node, passphrase_in_environment

MAPPING = str(DATA / "import_mapping.toml")


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    path = asyncio.run(make_offline_node(tmp_path / "node"))
    with passphrase_in_environment():
        yield path


def minga(config: Path, *arguments: str) -> int:
    return main(["--config", str(config), *arguments])


def case_count(config: Path) -> int:
    async def count() -> int:
        async with open_node(config) as node, node.store.read() as tx:
            return await tx.cases.count()
    return asyncio.run(count())


def edited_copy(tmp_path: Path) -> Path:
    text = (DATA / "casos.csv").read_text("utf-8")
    edited = tmp_path / "casos-diciembre.csv"
    edited.write_text(text.replace("durante una protesta", "durante una protesta en Puno")
                      + "GT-0009;2024-05;Guatemala;;Amenaza de muerte;;;Sindicalista;;;"
                        "sin identificar;;0;Llamadas a la sede del sindicato.;anonymised\n",
                      encoding="utf-8")
    return edited


def test_the_same_file_twice_imports_nothing_new(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert minga(config, "import", str(DATA / "casos.csv"), "--mapping", MAPPING) == 0
    assert "imported: 3 new, 0 updated, 0 unchanged, 0 skipped" in capsys.readouterr().out
    assert minga(config, "import", str(DATA / "casos.csv"), "--mapping", MAPPING,
                 "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would import: 0 new, 0 updated, 3 unchanged, 0 skipped" in out
    assert [line.split(",")[0].strip() for line in out.splitlines() if "row " in line] == [
        "row 2: unchanged", "row 3: unchanged", "row 4: unchanged"]
    assert minga(config, "import", str(DATA / "casos.csv"), "--mapping", MAPPING) == 0
    assert "imported: 0 new, 0 updated, 3 unchanged" in capsys.readouterr().out
    assert case_count(config) == 3


def test_an_edited_row_updates_and_a_new_row_is_added(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert minga(config, "import", str(DATA / "casos.csv"), "--mapping", MAPPING) == 0
    capsys.readouterr()
    edited = str(edited_copy(tmp_path))
    assert minga(config, "import", edited, "--mapping", MAPPING, "--dry-run", "--json") == 0
    checked = json.loads(capsys.readouterr().out)
    assert (checked["new"], checked["updated"], checked["unchanged"]) == (1, 1, 2)
    assert [(o["row"], o["status"], o["changed_fields"]) for o in checked["outcomes"]] == [
        (2, "unchanged", []), (3, "updated", ["narrative"]), (4, "unchanged", []),
        (5, "new", [])]
    assert minga(config, "import", edited, "--mapping", MAPPING) == 0
    out = capsys.readouterr().out
    assert "updated, case " in out and "(narrative)" in out and "Puno" not in out
    assert "imported: 1 new, 1 updated, 2 unchanged, 0 skipped" in out
    assert case_count(config) == 4


def test_our_own_export_imports_again_unchanged(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert minga(config, "import", str(DATA / "casos.csv"), "--mapping", MAPPING) == 0
    ours = tmp_path / "ours.csv"
    assert minga(config, "export", "--format", "csv", "--out", str(ours)) == 0
    capsys.readouterr()
    assert minga(config, "import", str(ours)) == 0
    assert "imported: 0 new, 0 updated, 3 unchanged, 0 skipped" in capsys.readouterr().out
    assert case_count(config) == 3


def test_a_mapping_without_a_key_column_is_warned_about(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unkeyed = tmp_path / "sin_clave.toml"
    unkeyed.write_text("\n".join(line for line in Path(MAPPING).read_text("utf-8").splitlines()
                                 if not line.startswith("key_column")), encoding="utf-8")
    assert minga(config, "import", str(DATA / "casos.csv"), "--mapping", str(unkeyed),
                 "--dry-run") == 0
    assert "warning: rows without a record id or key" in capsys.readouterr().err
