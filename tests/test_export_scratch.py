"""The export keeps nothing a photo in memory: the selection's numbers go to scratch files
and are sorted on disk (export/spill.py). What a user sees: the same dataset, byte for byte,
however many runs the sorts are cut into; memory that does not grow with the photos; a full
scratch disk told in one line."""

from __future__ import annotations

import csv
import errno
import os
import shutil
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from inat_server import InatServer
from test_export import SPLIT, export, fetched_world, snapshot
from world import manifest

from inatdl.export import spill
from inatdl.export.model import ExportOptions
from inatdl.export.selection import select
from inatdl.export.writers import writer_class


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InatServer, Path]]:
    yield from fetched_world(tmp_path_factory)


def tiny_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sorts cut into runs of 7 records, merged a few at a time, read back 5 at a time."""
    monkeypatch.setattr(spill, "RUN", 7)
    monkeypatch.setattr(spill, "MERGE", 2)
    monkeypatch.setattr(spill, "LEAST_BLOCK", 3)
    monkeypatch.setattr(spill, "CHUNK", 5)


def test_sorting_on_disk_gives_the_order_a_stable_sort_in_memory_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tiny_runs(monkeypatch)
    records = np.dtype([("key", "<i8"), ("place", "<i8")])
    generator = np.random.default_rng(5)
    for highest in (1, 3, 40, 1 << 60):  # keys nearly all equal, many ties, few, none
        given = np.zeros(500, records)
        given["key"] = generator.integers(0, highest, len(given))
        given["place"] = np.arange(len(given))
        pieces = [given[at : at + 11] for at in range(0, len(given), 11)]

        merged = np.concatenate(list(spill.sorted_by(iter(pieces), "key")))

        assert merged.tolist() == given[np.argsort(given["key"], kind="stable")].tolist()


@pytest.mark.parametrize("fmt", ["imagefolder", "webdataset", "parquet"])
def test_an_export_sorted_in_many_runs_on_disk_is_the_export_sorted_at_once(
    fetched: tuple[InatServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """Every order the export makes (shards by split and id, credits by label and id,
    --max-per-taxon's rounds, the counts of groups and observations) merged from many runs."""
    inat, data = fetched
    args = ["--split", SPLIT, "--format", fmt, "--max-per-taxon", "120", "--min-per-taxon", "3"]
    if fmt != "imagefolder":  # shards of a few photos each
        args += ["--shard-size", "20kB" if fmt == "webdataset" else "100kB"]
    first = export(inat, data, tmp_path / "at-once" / "out", *args)
    assert first.exit_code == 0, first.output

    tiny_runs(monkeypatch)
    result = export(inat, data, tmp_path / "in-runs" / "out", *args)

    assert result.exit_code == 0, result.output
    in_runs, at_once = snapshot(tmp_path / "in-runs" / "out"), snapshot(tmp_path / "at-once" / "out")
    assert {**in_runs, "README.md": ""} == {**at_once, "README.md": ""}
    cards = [
        (tmp_path / way / "out" / "README.md").read_text(encoding="utf-8") for way in ("in-runs", "at-once")
    ]
    assert cards[0].replace(str(tmp_path / "in-runs"), "") == cards[1].replace(str(tmp_path / "at-once"), "")
    labels = {
        line.split(" | ")[1] for line in (tmp_path / "in-runs" / "out" / "CREDITS.md").open() if " | " in line
    }
    assert labels - {"taxon", "---"} == {"Lythrum alatum", "Lythrum salicaria"}  # Quercus robur: fewer than 3


def synthetic_data_dir(data: Path, photos: int) -> None:
    """``photos`` photos of 1 byte in photos.csv's columns: two an observation, 7 taxa."""
    folder = data / "photos" / "Taxon"
    folder.mkdir(parents=True)
    (data / "one.jpg").write_bytes(b"\xff")
    lines = ["photo_id,observation_id,taxon_name,size,path,license_code,attribution,observer,observation_url"]
    for n in range(photos):
        observation = 1 + n // 2
        name = f"{observation * 10 + n % 2}_medium.jpg"
        os.link(data / "one.jpg", folder / name)
        lines.append(
            f"{observation * 10 + n % 2},{observation},Taxon {observation % 7},medium,photos/Taxon/{name},"
            f"cc-by,(c) someone,observer{observation % 5},https://www.inaturalist.org/observations/{observation}"
        )
    (data / "photos.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def selection_peak(data: Path) -> int:
    """The most memory Python's allocators (numpy's arrays too) held while the selection was
    made and every order it keeps was read through."""
    options = ExportOptions(splits=(("train", 0.8), ("test", 0.2)), format="webdataset")
    tracemalloc.start()
    try:
        selection, _ = select(data, options, data.parent / "out", writer_class("webdataset").measure)
        try:
            for _ in selection.photos(selection.between(0, len(selection))):
                pass
            for _ in selection.photos(selection.credited()):
                pass
        finally:
            selection.close()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_selection_holds_nothing_a_photo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten times the photos, the same memory: the numbers of 10,000 photos held in memory
    would take ~1 MB more than those of 1,000. (Runs of 128 records here, not 65,536,
    merged 512 at a time: both counts are many runs.)"""
    monkeypatch.setattr(spill, "RUN", 128)
    monkeypatch.setattr(spill, "MERGE", 512)
    monkeypatch.setattr(spill, "LEAST_BLOCK", 4)
    monkeypatch.setattr(spill, "CHUNK", 64)
    for photos in (1_000, 10_000):
        synthetic_data_dir(tmp_path / str(photos), photos)
        selection_peak(tmp_path / str(photos))  # what is made once (imports, caches): not a photo's cost

    peaks = [selection_peak(tmp_path / str(photos)) for photos in (1_000, 10_000)]

    assert peaks[1] - peaks[0] < 100_000, peaks


def test_a_full_scratch_disk_is_told_in_one_line(
    fetched: tuple[InatServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inat, data = fetched
    tiny_runs(monkeypatch)  # every sort writes runs

    def full(*_: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(spill, "_pwrite", full)
    result = export(inat, data, tmp_path / "out", "--format", "webdataset")

    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: cannot write the export's scratch file in {spill.tempfile.gettempdir()} "
        "(No space left on device): free space there, or set TMPDIR to a folder with room, "
        "and run the same command again"
    ]
    assert not (tmp_path / "out").exists()


def test_photos_are_counted_against_sorted_hashes_a_chunk_at_a_time() -> None:
    """A few found hashes spanning the range of a million known ones (an update to a much
    smaller selection): right, and never all the known ones in memory at once."""
    generator = np.random.default_rng(7)
    known_values = np.unique(generator.integers(-(1 << 62), 1 << 62, 1_000_000))
    found_values = np.sort(np.concatenate((known_values[::50_000], [-(1 << 63), 5, (1 << 63) - 1])))

    def known() -> Iterator[np.ndarray]:
        for start in range(0, len(known_values), 8192):
            yield known_values[start : start + 8192].copy().view(spill.HASHED)

    tracemalloc.start()
    try:
        missing = spill.count_missing(iter([found_values.view(spill.HASHED)]), known())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert missing == len(np.setdiff1d(found_values, known_values))
    assert peak < 1_000_000  # a chunk of 8,192 known hashes is 64 kB; all of them, 8 MB


def test_ids_that_are_not_plain_numbers_keep_their_text_and_their_place(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    """An id with a leading zero is ordered as its number, one that is no number after
    every number (by its text), and both are written as photos.csv has them."""
    inat, data = fetched
    copy = tmp_path / "data"
    shutil.copytree(data, copy, copy_function=os.link)
    rows = manifest(copy)
    rows[0]["photo_id"] = "0" + rows[0]["photo_id"]
    rows[1]["photo_id"] = "x" + rows[1]["photo_id"]
    rows[2]["photo_id"] = "a" + rows[2]["photo_id"]
    (copy / "photos.csv").unlink()
    with (copy / "photos.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    result = export(inat, copy, tmp_path / "out", "--format", "webdataset")

    assert result.exit_code == 0, result.output
    listed = (tmp_path / "out" / ".inatdl-export-photos.txt").read_text(encoding="utf-8").split()
    ids = [row["photo_id"] for row in rows]
    assert listed == sorted(ids, key=lambda i: (0, int(i), "") if i.isdigit() else (1, 0, i))
    assert listed[-2:] == [rows[2]["photo_id"], rows[1]["photo_id"]]
