"""OUT_DIR's list of the files an export owns (a file of its own beside the state, a name a
line): an update removes what the previous exports left, whether they finished, were cut
short, or were made by an inatdl that kept the list inside the state."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from inat_server import InatServer
from test_export import SPLIT, export, snapshot

from inatdl.export.outdir import FILES_NAME, STATE_NAME

pytest_plugins = ["test_export"]  # its `fetched` data dir


def test_an_update_after_a_cut_short_export_removes_the_photos_that_export_placed(
    fetched: tuple[InatServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inat, data = fetched
    out, fresh = tmp_path / "dataset", tmp_path / "fresh"
    assert export(inat, data, out, "--split", SPLIT, "--max-per-taxon", "20").exit_code == 0
    capped = snapshot(out)
    real_link, linked = os.link, []

    def link_then_stop(source: Any, target: Any) -> None:
        if len(linked) == 50:
            raise KeyboardInterrupt
        real_link(source, target)
        linked.append(Path(target).name.removeprefix(".").removesuffix(".part"))

    monkeypatch.setattr(os, "link", link_then_stop)
    assert export(inat, data, out, "--split", SPLIT).exit_code == 130  # every photo: cut short
    monkeypatch.setattr(os, "link", real_link)
    assert len(linked) == 50 and len(snapshot(out)) > len(capped)

    assert export(inat, data, out, "--split", SPLIT, "--max-per-taxon", "20").exit_code == 0
    assert export(inat, data, fresh, "--split", SPLIT, "--max-per-taxon", "20").exit_code == 0
    ours, theirs = snapshot(out), snapshot(fresh)
    assert ours.pop("README.md") and theirs.pop("README.md")
    strays = [name for name in linked if not any(path.endswith(f"/{name}") for path in capped)]
    assert strays and not any(path.endswith(f"/{name}") for path in ours for name in strays)
    assert ours == theirs


def test_an_export_whose_state_lists_its_files_itself_is_updated(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    """An export made by inatdl before the list had a file of its own ("files" in the state)."""
    inat, data = fetched
    out = tmp_path / "dataset"
    assert export(inat, data, out, "--split", SPLIT).exit_code == 0
    state = json.loads((out / STATE_NAME).read_text(encoding="utf-8"))
    files_path = out / state.pop("file_list")
    state["files"] = [json.loads(line) for line in files_path.read_text(encoding="utf-8").splitlines()]
    files_path.unlink()
    (out / STATE_NAME).write_text(json.dumps(state, indent=0), encoding="utf-8")
    robur = sorted(p.relative_to(out).as_posix() for p in out.glob("*/Quercus_robur/*"))
    assert robur and all(name in state["files"] for name in robur)

    result = export(inat, data, out, "--split", SPLIT, "--min-per-taxon", "10")  # Quercus robur goes

    assert result.exit_code == 0, result.output
    assert not list(out.glob("*/Quercus_robur")) and list(out.glob("*/Lythrum_alatum/*"))
    listed = [json.loads(line) for line in (out / FILES_NAME).read_text(encoding="utf-8").splitlines()]
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert listed == sorted(on_disk - {STATE_NAME, FILES_NAME})


def test_a_folder_holding_only_the_list_of_files_is_exported_into(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    """The first export killed between writing its list of files and its state."""
    inat, data = fetched
    out = tmp_path / "dataset"
    out.mkdir()
    (out / FILES_NAME).write_text('"README.md"\n', encoding="utf-8")
    result = export(inat, data, out, "--split", SPLIT)
    assert result.exit_code == 0, result.output
    assert (out / STATE_NAME).is_file() and list(out.glob("train/*/*.jpg"))
