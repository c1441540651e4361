"""`photos plan OUT.parquet`: the job's photos as img2dataset's input, from either route,
with the splits `dataset export` draws, and nothing downloaded."""

from __future__ import annotations

import csv
import errno
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from inat_server import InatServer
from opendata_world import run_open
from world import ALATUM_PHOTOS, SALICARIA_PHOTOS, build_lythrum, write_species

from inatdl.opendata import handoff
from inatdl.splits import split_for, unit_hash

COLUMNS = [
    "url", "label", "photo_id", "observation_id", "taxon_id", "taxon_name", "observed_taxon_id",
    "observed_taxon_name", "size", "license_code", "attribution", "observer", "quality_grade",
    "latitude", "longitude", "observed_on", "observation_url", "observation_uuid",
    "positional_accuracy", "coordinates_obscured",
]  # fmt: skip
SPLITS = (("train", 0.5), ("test", 0.5))


@pytest.fixture
def resolved(inat: InatServer, tmp_path: Path) -> InatServer:
    """The Lythrum world synced as open data, salicaria and alatum resolved from it."""
    build_lythrum(inat)
    species = write_species(tmp_path / "species.csv", ["Lythrum salicaria", "Lythrum alatum"])
    assert run_open(inat, tmp_path, "opendata", "sync").exit_code == 0
    assert run_open(inat, tmp_path, "taxa", "resolve", str(species), "--source", "open-data").exit_code == 0
    inat.clear_requests()
    return inat


def rows(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()  # type: ignore[no-any-return]


def test_the_open_data_plan_asks_nothing_and_is_img2datasets_input(
    resolved: InatServer, tmp_path: Path
) -> None:
    out = tmp_path / "plan.parquet"
    result = run_open(
        resolved, tmp_path, "photos", "plan", str(out), "--source", "open-data", "--size", "small",
        "--split", "train=0.5,test=0.5", "--seed", "3",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert resolved.requests == []  # no API request, no photo request: a local query
    assert pq.read_schema(out).names == [*COLUMNS, "split"]
    plan = rows(out)
    assert sorted(r["photo_id"] for r in plan) == sorted(SALICARIA_PHOTOS + [1400] + ALATUM_PHOTOS)
    first = next(r for r in plan if r["photo_id"] == 2000)
    uuid = first["observation_uuid"]
    assert first == {
        "url": f"{resolved.open_data_url}/photos/2000/small.jpeg",
        "label": "Lythrum alatum",
        "photo_id": 2000,
        "observation_id": None,
        "taxon_id": 61300,
        "taxon_name": "Lythrum alatum",
        "observed_taxon_id": 61300,
        "observed_taxon_name": "Lythrum alatum",
        "size": "small",
        "license_code": "cc0",
        "attribution": "(c) samroom, no rights reserved (CC0)",
        "observer": "samroom",
        "quality_grade": "research",
        "latitude": 50.09,
        "longitude": -104.71,
        "observed_on": "2020-08-27",
        "observation_url": f"https://www.inaturalist.org/observations/{uuid}",
        "observation_uuid": uuid,
        "positional_accuracy": None,
        "coordinates_obscured": None,
        "split": split_for(unit_hash(3, f"observation:{uuid}"), SPLITS),
    }
    assert {r["split"] for r in plan} == {"train", "test"}
    assert (
        "--input_format parquet --url_col url --caption_col label --save_additional_columns" in result.stdout
    )


def test_both_routes_plan_the_same_photos(resolved: InatServer, tmp_path: Path) -> None:
    api, open_data = tmp_path / "api.parquet", tmp_path / "open.parquet"
    job = ("--license", "cc-by,cc0", "--max-per-taxon", "4")
    assert (
        run_open(
            resolved, tmp_path, "photos", "plan", str(open_data), "--source", "open-data", *job
        ).exit_code
        == 0
    )
    assert run_open(resolved, tmp_path, "photos", "plan", str(api), *job).exit_code == 0
    assert resolved.requests_to("/photos/") == [] or all(
        r.method == "HEAD" for r in resolved.requests_to("/photos/")
    )
    same = ("photo_id", "taxon_id", "label", "license_code", "attribution", "observer", "observed_taxon_id")
    assert [{k: r[k] for k in same} for r in rows(api)] == [{k: r[k] for k in same} for r in rows(open_data)]
    assert [r["photo_id"] for r in rows(api)] == [1000, 1011, 1030, 1041, 2000, 2010, 2020, 2030]


def test_the_api_plan_leaves_the_data_dir_as_a_fetch_does(resolved: InatServer, tmp_path: Path) -> None:
    """No state.sqlite-wal and -shm left beside the state, which a read-only reader cannot
    remove; and a data dir whose name holds what a URI reads otherwise (#, ?, %, a space)."""
    data = tmp_path / "lythrum #1 ?50% off"
    data.mkdir()
    (data / "taxa.csv").write_bytes((tmp_path / "data" / "taxa.csv").read_bytes())
    plan = ("--data-dir", str(data), "photos", "plan", str(tmp_path / "plan.parquet"))
    result = run_open(resolved, tmp_path, *plan)
    assert result.exit_code == 0, result.output
    assert run_open(resolved, tmp_path, "photos", "plan", str(tmp_path / "same.parquet")).exit_code == 0
    assert rows(tmp_path / "plan.parquet") == rows(tmp_path / "same.parquet") != []
    assert sorted(p.name for p in data.iterdir() if p.name.startswith("state")) == ["state.sqlite"]


def test_the_plans_splits_are_the_exports(resolved: InatServer, tmp_path: Path) -> None:
    out = tmp_path / "plan.parquet"
    assert (
        run_open(resolved, tmp_path, "photos", "plan", str(out), "--split", "train=0.5,test=0.5").exit_code
        == 0
    )
    assert run_open(resolved, tmp_path, "photos", "fetch", "--size", "medium").exit_code == 0
    export = tmp_path / "export"
    result = run_open(resolved, tmp_path, "dataset", "export", str(export), "--split", "train=0.5,test=0.5")
    assert result.exit_code == 0, result.output
    exported = {}
    for split in ("train", "test"):
        with (export / split / "metadata.csv").open(encoding="utf-8") as handle:
            exported.update({int(r["photo_id"]): split for r in csv.DictReader(handle)})
    planned = {r["photo_id"]: r["split"] for r in rows(out)}
    assert exported == {photo: split for photo, split in planned.items() if photo in exported}
    assert len(exported) >= 20


def test_place_id_on_the_open_data_is_a_usage_error(resolved: InatServer, tmp_path: Path) -> None:
    out = tmp_path / "plan.parquet"
    result = run_open(
        resolved, tmp_path, "photos", "plan", str(out), "--source", "open-data", "--place-id", "7"
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for --place-id: the open data holds no places; use --bbox "
        "SWLAT,SWLNG,NELAT,NELNG instead (or --source api)"
    )
    assert not out.exists()


def test_without_a_synced_dump_the_plan_names_opendata_sync(inat: InatServer, tmp_path: Path) -> None:
    build_lythrum(inat)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "taxa.csv").write_text(
        "input_name,taxon_id,name,rank,match,observations_count\nx,61299,Lythrum salicaria,species,exact,1\n"
    )
    result = run_open(inat, tmp_path, "photos", "plan", str(tmp_path / "p.parquet"), "--source", "open-data")
    assert result.exit_code == 1
    assert "run `inatdl opendata sync` first" in result.stderr
    assert inat.requests == []


@pytest.mark.parametrize("name", ["plan.csv", "plan", "plan.PARQUET"])
def test_the_plan_is_named_parquet(resolved: InatServer, tmp_path: Path, name: str) -> None:
    """A plan named plan.csv would be Parquet all the same, unreadable as the CSV it says."""
    out = tmp_path / name
    result = run_open(resolved, tmp_path, "photos", "plan", str(out), "--source", "open-data")
    if name.lower().endswith(".parquet"):
        assert result.exit_code == 0 and rows(out)
        return
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for 'OUT.parquet': {str(out)!r}: the plan is a Parquet file; "
        "give it a name ending in .parquet (plan.parquet)"
    )
    assert not out.exists()


def test_the_scratch_file_of_an_open_data_plan_is_removed_even_when_writing_fails(
    resolved: InatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine sorts the plan into a scratch file beside its spills: removed once the plan
    is written, and when the writing fails halfway (here the disk fills as the splits are
    drawn), leaving neither a plan nor a part of one."""
    spills = tmp_path / "open-data" / "duckdb-tmp"
    out = tmp_path / "plan.parquet"
    job = ("photos", "plan", str(out), "--source", "open-data", "--split", "train=0.5,test=0.5")
    assert run_open(resolved, tmp_path, *job).exit_code == 0
    assert out.exists() and list(spills.iterdir()) == []
    out.unlink()

    def full(*args: object) -> list[str]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(handoff, "_splits", full)
    result = run_open(resolved, tmp_path, *job)
    assert result.exit_code == 1
    assert "is full; free some space" in result.output
    assert list(spills.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir() if "plan" in p.name) == []
