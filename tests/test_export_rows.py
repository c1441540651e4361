"""The export reads photos.csv's rows back when it writes them (the selection keeps only
numbers a photo): what each format holds is still photos.csv's row exactly as written,
whatever the quoting, line breaks and column order; and the selection's decisions made on
numbers (--max-per-taxon's rule) are the documented ones."""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from inat_server import InatServer
from test_export import SPLIT, export, fetched_world, read_csv
from test_export_formats import parquet_rows, tar_samples
from world import manifest

from inatdl.splits import group_key, unit_hash

#: Values a row must come back with unchanged: a comma, quotes, line breaks, non-ASCII.
AWKWARD = ('Ann, "the" Botanist', "line one\nline two", "crlf\r\nend", "Ærø ünïcödé 名前", ' "', "")


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InatServer, Path]]:
    yield from fetched_world(tmp_path_factory)


def awkward_copy(data: Path, folder: Path) -> tuple[Path, dict[str, dict[str, str]]]:
    """A copy of the data dir whose photos.csv has its columns in reverse order, awkward
    attributions and observers, CRLF line ends, its rows in reverse (so the last row, with no
    line break after it, is the first photo of a shard), and no line break after its last row."""
    copy = folder / "awkward"
    shutil.copytree(data, copy, copy_function=os.link)
    rows = manifest(data)[::-1]
    for i, row in enumerate(rows):
        row["attribution"] = f"(c) {AWKWARD[i % len(AWKWARD)]}"
        row["observer"] = AWKWARD[(i // 2) % len(AWKWARD)] or "plain"
    columns = list(reversed(rows[0]))
    (copy / "photos.csv").unlink()
    with (copy / "photos.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(columns)
        writer.writerows([row[c] for c in columns] for row in rows)
    text = (copy / "photos.csv").read_bytes()
    (copy / "photos.csv").write_bytes(text.removesuffix(b"\r\n"))
    return copy, {row["photo_id"]: {c: row[c] for c in columns} for row in rows}


def test_every_format_holds_each_row_exactly_as_photos_csv_writes_it(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    inat, data = fetched
    copy, rows = awkward_copy(data, tmp_path)
    columns = list(next(iter(rows.values())))
    assert columns[0] != "photo_id"  # the header's order is not the usual one

    assert export(inat, copy, tmp_path / "wds", "--split", SPLIT, "--format", "webdataset").exit_code == 0
    samples = tar_samples(tmp_path / "wds")
    assert sorted(samples) == sorted(rows)
    for key, sample in samples.items():
        as_json = {"true": True, "false": False, "": None}  # coordinates_obscured: JSON's, not text
        assert list(json.loads(sample["json"]).items()) == [
            *((c, as_json[v] if c == "coordinates_obscured" else v) for c, v in rows[key].items()),
            ("label", rows[key]["taxon_name"]),
        ]

    assert export(inat, copy, tmp_path / "pq", "--split", SPLIT, "--format", "parquet").exit_code == 0
    for key, row in parquet_rows(tmp_path / "pq").items():
        for column in ("attribution", "observer", "path", "observation_url"):
            assert row[column] == rows[key][column], (key, column)

    result = export(inat, copy, tmp_path / "folders", "--split", SPLIT)
    assert result.exit_code == 0, result.output
    exported = [r for p in (tmp_path / "folders").glob("*/metadata.csv") for r in read_csv(p)]
    assert sorted(r["photo_id"] for r in exported) == sorted(rows)
    for row in exported:
        assert {c: row[c] for c in columns} == rows[row["photo_id"]]
    credits = (tmp_path / "folders" / "CREDITS.md").read_text(encoding="utf-8")
    assert "| (c) Ærø ünïcödé 名前 |" in credits


def test_metadata_csv_keeps_photos_csv_order(fetched: tuple[InatServer, Path], tmp_path: Path) -> None:
    inat, data = fetched
    assert export(inat, data, tmp_path / "folders", "--split", SPLIT).exit_code == 0
    order = [row["photo_id"] for row in manifest(data)]
    for path in (tmp_path / "folders").glob("*/metadata.csv"):
        ids = [row["photo_id"] for row in read_csv(path)]
        assert ids == [photo_id for photo_id in order if photo_id in set(ids)]


def kept_by_the_rule(rows: list[dict[str, str]], maximum: int, seed: int, group_by: str) -> set[str]:
    """--max-per-taxon as documented: within a taxon, one photo of each group first (groups
    in the order of a hash of the seed and the group, a group's photos by a hash of the seed
    and the photo id), then a second of each, and so on."""
    groups: dict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)
    for index, row in enumerate(rows):
        key = group_key(group_by, row["observation_id"] or row["observation_uuid"], row["observer"])
        groups[(row["taxon_name"], key)].append((unit_hash(seed, f"photo:{row['photo_id']}"), index))
    ranked: dict[str, list[tuple[int, float, float, int]]] = defaultdict(list)
    for (taxon, key), members in groups.items():
        for round_, (position, index) in enumerate(sorted(members)):
            ranked[taxon].append((round_, unit_hash(seed, f"cap:{key}"), position, index))
    return {rows[index]["photo_id"] for order in ranked.values() for *_, index in sorted(order)[:maximum]}


@pytest.mark.parametrize(("seed", "group_by", "split"), [(0, "observation", True), (7, "observer", False)])
def test_max_per_taxon_keeps_the_photos_the_rule_names(
    fetched: tuple[InatServer, Path], tmp_path: Path, seed: int, group_by: str, split: bool
) -> None:
    inat, data = fetched
    args = ["--max-per-taxon", "30", "--seed", str(seed), "--group-by", group_by]
    result = export(inat, data, tmp_path / "out", *args, *(["--split", SPLIT] if split else []))
    assert result.exit_code == 0, result.output
    exported = {r["photo_id"] for p in (tmp_path / "out").rglob("metadata.csv") for r in read_csv(p)}
    assert exported == kept_by_the_rule(manifest(data), 30, seed, group_by)


def test_a_row_changed_in_photos_csv_rewrites_its_shard_alone(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    """Same photos, same files: only one photo's attribution changed (a user renamed)."""
    inat, data = fetched
    copy = tmp_path / "data"
    shutil.copytree(data, copy, copy_function=os.link)
    out, args = tmp_path / "wds", ["--split", SPLIT, "--format", "webdataset", "--shard-size", "100kB"]
    assert export(inat, copy, out, *args).exit_code == 0
    rows = manifest(copy)
    rows[5]["attribution"] = "(c) Renamed, some rights reserved"
    (copy / "photos.csv").unlink()
    with (copy / "photos.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    result = export(inat, copy, out, *args)

    assert result.exit_code == 0, result.output
    shards = len(list(out.glob("*.tar")))
    assert f"1 file written, {shards - 1} unchanged" in result.output
    sample = tar_samples(out)[rows[5]["photo_id"]]
    assert json.loads(sample["json"])["attribution"] == "(c) Renamed, some rights reserved"
