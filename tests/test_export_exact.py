"""Rows with every kind of character and number cell: a tar's samples are measured exactly
whatever characters their rows hold (the JSON's length is found without building it, so
shards fill to --shard-size and never past it), Parquet's number columns are read as
Python reads them, and a cell that is no number is named."""

from __future__ import annotations

import csv
import json
import math
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from inat_server import InatServer
from test_export import SPLIT, TAXA, build_world, export, fetch
from world import manifest, write_taxa

LIMIT = 60_000  # bytes: a handful of square photos a shard
#: What JSON escapes (quotes, backslashes, control characters) and what it keeps (non-ASCII).
ODD_ATTRIBUTIONS = [
    '(c) "JJ" O\'Brien \\ co.',
    "(c) line\nbreak\ttab" + "\x01" * 3000,
    "(c) José 漢字 🦋, some rights reserved",
    "(c) plain, some rights reserved (CC BY)",
]
#: Number cells as photos.csv may hold them.
PLAIN_LATITUDES = ["12.25", "-0.5", "007", "", "3", "-12.000001"]
OTHER_LONGITUDES = ["1e5", " 12.5", "+3", "nan", "-0", "inf"]


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InatServer, Path]]:
    """A data dir whose photos.csv rows hold every kind of character and number cell."""
    data = tmp_path_factory.mktemp("odd") / "data"
    with InatServer() as inat:
        build_world(inat)
        write_taxa(data, TAXA)
        fetch(inat, data)
        rows = manifest(data)
        for i, row in enumerate(rows):
            row["attribution"] = ODD_ATTRIBUTIONS[i % len(ODD_ATTRIBUTIONS)]
            row["latitude"] = PLAIN_LATITUDES[i % len(PLAIN_LATITUDES)]
            row["longitude"] = OTHER_LONGITUDES[i % len(OTHER_LONGITUDES)]
        with (data / "photos.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        yield inat, data


def _blocks(size: int) -> int:
    return -(-size // 512) * 512


def _shard_bytes(samples: int) -> int:
    """What a tar of ``samples`` bytes of members takes: two zero blocks, whole records."""
    return -(-(samples + 1024) // 10240) * 10240


def test_tar_shards_fill_to_the_shard_size_whatever_characters_the_rows_hold(
    odd: tuple[InatServer, Path], tmp_path: Path
) -> None:
    inat, data = odd
    out = tmp_path / "tars"

    result = export(inat, data, out, "--split", SPLIT, "--format", "webdataset", "--shard-size", "60kB")

    assert result.exit_code == 0, result.output

    rows = {row["photo_id"]: row for row in manifest(data)}
    splits: dict[str, list[tuple[int, int]]] = {}  # split → each shard's size and its first sample's
    seen = set()
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as tar:
            members = tar.getmembers()
            first = members[0].name.split(".")[0]
            first_sample = sum(512 + _blocks(m.size) for m in members if m.name.split(".")[0] == first)
            samples = sum(512 + _blocks(m.size) for m in members)
            for member in members:
                if member.name.endswith(".json"):
                    key = member.name.split(".")[0]
                    handle = tar.extractfile(member)
                    assert handle is not None
                    obscured = {"true": True, "false": False, "": None}[rows[key]["coordinates_obscured"]]
                    row = {**rows[key], "coordinates_obscured": obscured, "label": rows[key]["taxon_name"]}
                    assert handle.read() == json.dumps(row, ensure_ascii=False).encode()
                    seen.add(key)
        assert shard.stat().st_size == _shard_bytes(samples) <= LIMIT
        splits.setdefault(shard.name.split("-")[0], []).append((samples, first_sample))
    assert seen == set(rows)
    for shards in splits.values():
        for (samples, _), (_, next_first) in zip(shards[:-1], shards[1:], strict=True):
            assert _shard_bytes(samples + next_first) > LIMIT  # the next shard's first did not fit


def test_parquet_numbers_are_read_as_python_reads_them(odd: tuple[InatServer, Path], tmp_path: Path) -> None:
    inat, data = odd
    out = tmp_path / "parquet"

    assert export(inat, data, out, "--split", SPLIT, "--format", "parquet").exit_code == 0

    rows = {row["photo_id"]: row for row in manifest(data)}
    exported = [row for path in (out / "data").glob("*.parquet") for row in pq.read_table(path).to_pylist()]
    assert sorted(str(row["photo_id"]) for row in exported) == sorted(rows)
    for row in exported:
        written = rows[str(row["photo_id"])]
        assert row["latitude"] == (float(written["latitude"]) if written["latitude"] else None)
        expected = float(written["longitude"])
        assert row["longitude"] == expected or (math.isnan(expected) and math.isnan(row["longitude"]))
        assert math.copysign(1, row["longitude"]) == math.copysign(1, expected)


def test_a_cell_that_is_no_number_is_named(odd: tuple[InatServer, Path], tmp_path: Path) -> None:
    inat, data = odd
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    rows = manifest(copy)
    rows[-1]["latitude"] = "12,5"
    with (copy / "photos.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    result = export(inat, copy, tmp_path / "parquet", "--format", "parquet")

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: photos.csv gives photo {rows[-1]['photo_id']} the latitude '12,5', not a number; "
        "run `inatdl photos fetch` to rewrite it\n"
    )


@pytest.mark.parametrize("obscured", ["true", "false", ""])
@pytest.mark.parametrize("attribution", ODD_ATTRIBUTIONS)
def test_a_samples_json_is_measured_as_written_with_its_bare_booleans(
    attribution: str, obscured: str
) -> None:
    """coordinates_obscured is written as JSON's true/false/null, not a quoted string: the
    measure that fills a shard must count it as written, or a shard can pass --shard-size
    by a block when a sample ends near one."""
    from inatdl.export.writers.webdataset import _Json

    sample = _Json(("photo_id", "coordinates_obscured", "attribution", "taxon_name"))
    values = ["7", obscured, attribution, "Lythrum salicaria"]

    assert sample.length(values) == len(sample.encode(values))
