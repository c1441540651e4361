"""`photos fetch --source open-data`: the API route's photos, files and photos.csv from the
synced dump, with no API request, through the same state, pool and budget."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest
from inat_server import InatServer, gzip_bytes
from opendata_world import run_open
from world import ALATUM_PHOTOS, SALICARIA_PHOTOS, build_lythrum, files, write_species

SAME = (
    "photo_id", "taxon_id", "taxon_name", "observed_taxon_id", "observed_taxon_name", "size", "path",
    "license_code", "attribution", "observer", "quality_grade", "latitude", "longitude", "observed_on",
)  # fmt: skip


@pytest.fixture
def synced(inat: InatServer, tmp_path: Path) -> InatServer:
    build_lythrum(inat)
    species = write_species(tmp_path / "species.csv", ["Lythrum salicaria", "Lythrum alatum"])
    assert run_open(inat, tmp_path, "opendata", "sync").exit_code == 0
    assert run_open(inat, tmp_path, "taxa", "resolve", str(species), "--source", "open-data").exit_code == 0
    inat.clear_requests()
    return inat


def manifest(data_dir: Path) -> list[dict[str, str]]:
    with (data_dir / "photos.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("job", [(), ("--max-per-taxon", "3", "--license", "cc-by,cc0,pd")])
def test_both_routes_give_the_same_photos(synced: InatServer, tmp_path: Path, job: tuple[str, ...]) -> None:
    result = run_open(synced, tmp_path, "photos", "fetch", "--size", "small", "--source", "open-data", *job)
    assert result.exit_code == 0, result.output
    assert synced.api_requests() == []  # not one API request
    assert all(
        r.path.startswith("/open-data/photos/") for r in synced.photo_requests() + synced.open_data_requests()
    )
    open_rows, open_files = manifest(tmp_path / "data"), files(tmp_path / "data")
    # the same job on the API route, into another data dir
    api_dir = tmp_path / "api"
    (api_dir).mkdir()
    (api_dir / "taxa.csv").write_bytes((tmp_path / "data" / "taxa.csv").read_bytes())
    api = run_open(synced, tmp_path, "--data-dir", str(api_dir), "photos", "fetch", "--size", "small", *job)
    assert api.exit_code == 0, api.output
    api_rows = manifest(api_dir)
    assert [{k: r[k] for k in SAME} for r in open_rows] == [{k: r[k] for k in SAME} for r in api_rows]
    assert open_files == files(api_dir)
    if not job:
        expected = sorted(SALICARIA_PHOTOS + ALATUM_PHOTOS)
        assert sorted(int(r["photo_id"]) for r in open_rows) == expected
        assert "1 photo gone from iNaturalist (404/410); not retried." in result.stdout


def test_the_progress_says_the_open_data_is_listed_not_paged(synced: InatServer, tmp_path: Path) -> None:
    """It pages nothing from an API (issue 22's walk-through: "paging the observations of the
    open data"), and a dry run says what it would download, not "0 of N photos handled"."""
    result = run_open(synced, tmp_path, "photos", "fetch", "--source", "open-data", "--dry-run")
    assert result.exit_code == 0, result.output
    progress = result.stderr.splitlines()
    assert progress[0] == "listing the photos of 2 taxa from the open data"
    to_download = len(SALICARIA_PHOTOS + ALATUM_PHOTOS) + 1  # and the one gone, not known before
    assert progress[-1] == f"{to_download} photos to download (dry run: nothing downloaded)"
    assert "paging" not in result.stderr and "handled" not in result.stderr


def test_photos_csv_names_the_observation_by_uuid(synced: InatServer, tmp_path: Path) -> None:
    assert (
        run_open(synced, tmp_path, "photos", "fetch", "--source", "open-data", "--size", "square").exit_code
        == 0
    )
    row = next(r for r in manifest(tmp_path / "data") if r["photo_id"] == "1200")
    uuid = row["observation_uuid"]
    assert row["observation_id"] == "" and len(uuid) == 36
    assert row["observation_url"] == f"https://www.inaturalist.org/observations/{uuid}"
    assert row["url"] == f"{synced.open_data_url}/photos/1200/square.jpg"
    assert row["coordinates_obscured"] == ""
    assert (row["taxon_name"], row["observed_taxon_name"]) == (
        "Lythrum salicaria",
        "Lythrum salicaria tomentosum",
    )


def test_a_rerun_asks_nothing_and_a_raised_cap_adds_the_next_photos(
    synced: InatServer, tmp_path: Path
) -> None:
    fetch = ("photos", "fetch", "--source", "open-data", "--size", "square")
    assert run_open(synced, tmp_path, *fetch, "--max-per-taxon", "3").exit_code == 0
    first = sorted(int(r["photo_id"]) for r in manifest(tmp_path / "data"))
    assert first == [1000, 1001, 1011, 2000, 2010, 2020]  # the lowest photo ids of each taxon
    synced.clear_requests()
    assert run_open(synced, tmp_path, *fetch, "--max-per-taxon", "3").exit_code == 0
    assert synced.requests == []
    assert run_open(synced, tmp_path, *fetch, "--max-per-taxon", "5").exit_code == 0
    added = sorted({int(r["photo_id"]) for r in manifest(tmp_path / "data")} - set(first))
    assert added == [1020, 1030, 2030, 2040]
    assert synced.api_requests() == []


def test_a_dry_run_says_the_listing_asked_no_api_request(synced: InatServer, tmp_path: Path) -> None:
    result = run_open(synced, tmp_path, "photos", "fetch", "--source", "open-data", "--dry-run")
    assert result.exit_code == 0, result.output
    assert synced.api_requests() == []
    last = result.stdout.splitlines()[-1]
    assert last.startswith("Listed from the open data, with no API request. Sizes estimated from ")
    assert "API requests for the listing" not in result.stdout


def test_a_photo_under_two_observations_is_downloaded_once(synced: InatServer, tmp_path: Path) -> None:
    rows = synced.open_data_rows("photos")
    alatum_photo = next(r for r in rows if r[1] == "2000")
    salicaria_obs = next(r for r in rows if r[1] == "1000")[2]
    twice = [*rows, [alatum_photo[0], "2000", salicaria_obs, *alatum_photo[3:]]]
    synced.open_data_files["photos"] = gzip_bytes("".join("\t".join(r) + "\n" for r in twice).encode())
    assert gzip.decompress(synced.open_data_files["photos"]).count(b"\t2000\t") == 2  # type: ignore[arg-type]
    assert run_open(synced, tmp_path, "opendata", "sync").exit_code == 0
    synced.clear_requests()
    result = run_open(synced, tmp_path, "photos", "fetch", "--source", "open-data", "--size", "square")
    assert result.exit_code == 0, result.output
    assert [r.path for r in synced.open_data_requests()].count("/open-data/photos/2000/square.jpeg") == 1
    assert [r["photo_id"] for r in manifest(tmp_path / "data")].count("2000") == 1


def test_place_id_and_a_missing_sync_are_one_line_each(inat: InatServer, tmp_path: Path) -> None:
    build_lythrum(inat)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "taxa.csv").write_text(
        "input_name,taxon_id,name,rank,match,observations_count\nx,61299,Lythrum salicaria,species,exact,1\n"
    )
    place = run_open(inat, tmp_path, "photos", "fetch", "--source", "open-data", "--place-id", "5")
    assert place.exit_code == 2
    assert "Error: Invalid value for --place-id: the open data holds no places; use --bbox" in place.stderr
    unsynced = run_open(inat, tmp_path, "photos", "fetch", "--source", "open-data")
    assert unsynced.exit_code == 1
    assert unsynced.stderr == (
        f"Error: no synced open data in {tmp_path / 'open-data'}; run `inatdl opendata sync` first "
        "(or point --open-data-dir at the folder it synced)\n"
    )
    assert inat.requests == []


def test_photos_fetched_from_the_api_are_not_fetched_again_from_the_open_data(
    synced: InatServer, tmp_path: Path
) -> None:
    assert run_open(synced, tmp_path, "photos", "fetch", "--size", "square").exit_code == 0
    before = files(tmp_path / "data")
    synced.clear_requests()
    result = run_open(synced, tmp_path, "photos", "fetch", "--size", "square", "--source", "open-data")
    assert result.exit_code == 0, result.output
    assert synced.requests == []  # every photo the dump lists is in the state already
    assert files(tmp_path / "data") == before
    assert len(manifest(tmp_path / "data")) == len(before)


def test_the_open_data_plans_splits_are_the_exports(synced: InatServer, tmp_path: Path) -> None:
    """Where the route knows no observation id, the plan and the export group by its uuid."""
    import pyarrow.parquet as pq

    split = ("--split", "train=0.5,test=0.5")
    plan = tmp_path / "plan.parquet"
    assert (
        run_open(synced, tmp_path, "photos", "plan", str(plan), "--source", "open-data", *split).exit_code
        == 0
    )
    assert (
        run_open(synced, tmp_path, "photos", "fetch", "--source", "open-data", "--size", "small").exit_code
        == 0
    )
    result = run_open(synced, tmp_path, "dataset", "export", str(tmp_path / "export"), *split)
    assert result.exit_code == 0, result.output
    exported = {}
    for name in ("train", "test"):
        with (tmp_path / "export" / name / "metadata.csv").open(encoding="utf-8") as handle:
            exported.update({int(row["photo_id"]): name for row in csv.DictReader(handle)})
    planned = {row["photo_id"]: row["split"] for row in pq.read_table(plan).to_pylist()}
    assert len(exported) == 23 and set(exported.values()) == {"train", "test"}
    assert exported == {photo: name for photo, name in planned.items() if photo in exported}


def test_a_variety_listed_since_takes_its_downloaded_photos_without_a_download(
    synced: InatServer, tmp_path: Path
) -> None:
    """As on the API route: the species fetched first (its variety's photo 1200 in its
    folder), then the variety listed: the file and its photos.csv row move, no request."""
    fetch = ("photos", "fetch", "--size", "small", "--source", "open-data")
    assert run_open(synced, tmp_path, *fetch).exit_code == 0
    data = tmp_path / "data"
    before = {r["photo_id"]: r["path"] for r in manifest(data)}
    assert before["1200"] == "photos/Lythrum_salicaria/1200_small.jpg"
    names = ["Lythrum salicaria", "Lythrum alatum", "Lythrum salicaria tomentosum"]
    species = write_species(tmp_path / "species.csv", names)
    assert run_open(synced, tmp_path, "taxa", "resolve", str(species), "--source", "open-data").exit_code == 0
    synced.clear_requests()

    result = run_open(synced, tmp_path, *fetch)

    assert result.exit_code == 0, result.output
    assert synced.open_data_requests() == [] and synced.api_requests() == []
    rows = {r["photo_id"]: r for r in manifest(data)}
    assert rows.keys() == before.keys()
    moved = "photos/Lythrum_salicaria_tomentosum/1200_small.jpg"
    assert (rows["1200"]["path"], rows["1200"]["taxon_id"]) == (moved, "70001")
    assert set(files(data)) == {r["path"] for r in rows.values()}
    assert "Moved 1 photo already downloaded" in result.output
    synced.clear_requests()
    again = run_open(synced, tmp_path, *fetch)
    assert "Moved" not in again.output and synced.open_data_requests() == []
