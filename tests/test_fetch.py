"""`inatdl photos fetch`, over real HTTP against the test server."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from fakes import FakeClock
from inat_server import Fault, InatServer
from world import (
    ALATUM,
    ALATUM_PHOTOS,
    SALICARIA,
    SALICARIA_PHOTOS,
    VARIETY,
    expected_files,
    files,
    manifest,
    run,
    write_taxa,
)

from inatdl.pool import JobQueue
from inatdl.state import PhotoJob
from inatdl.units import format_size

LICENSES = "cc0,cc-by,cc-by-nc,cc-by-sa,cc-by-nd,cc-by-nc-sa,cc-by-nc-nd"


def test_fetch_downloads_exactly_the_licensed_photos(world: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run(world, data, "photos", "fetch", "--size", "medium")
    assert result.exit_code == 0, result.output
    assert files(data) == expected_files(world)
    # one page for both taxa, by id, with the licence filter, never by page number
    pages = world.requests_to("/v1/observations")
    assert [r.query for r in pages] == [
        {
            "taxon_id": f"{SALICARIA},{ALATUM}",
            "photos": "true",
            "photo_license": LICENSES,
            "order_by": "id",
            "order": "asc",
            "per_page": "200",
            "id_above": "0",
        }
    ]
    # one request per photo; the gone one once; never a placeholder nor an unlicensed photo
    photo_paths = sorted(r.path for r in world.photo_requests())
    wanted = sorted(
        [f"/photos/{p}/medium.jpg" for p in [*SALICARIA_PHOTOS, 1400]]
        + [f"/photos/{p}/medium.jpeg" for p in ALATUM_PHOTOS]
    )
    assert photo_paths == wanted
    assert not world.requests_to("/assets")
    # the summary
    assert (
        "Lythrum salicaria" in result.stdout
        and "1 photo gone from iNaturalist (404/410); not retried." in result.stdout
    )
    assert "Skipped: 9 licence, 1 placeholder" in result.stdout


def test_manifest_keeps_licence_and_attribution_of_every_photo(world: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(world, data, "photos", "fetch").exit_code == 0
    rows = manifest(data)
    assert len(rows) == len(SALICARIA_PHOTOS) + len(ALATUM_PHOTOS)
    assert list(rows[0])[:18] == [
        "photo_id",
        "observation_id",
        "taxon_id",
        "taxon_name",
        "observed_taxon_id",
        "observed_taxon_name",
        "size",
        "path",
        "url",
        "license_code",
        "attribution",
        "observer",
        "quality_grade",
        "latitude",
        "longitude",
        "observed_on",
        "observation_url",
        "bytes",
    ]
    by_id = {int(r["photo_id"]): r for r in rows}
    for photo_id, row in by_id.items():
        observation = world.observation(int(row["observation_id"]))
        photo = next(p for p in observation["photos"] if p["id"] == photo_id)
        assert row["license_code"] == photo["license_code"]
        assert row["attribution"] == photo["attribution"]
        assert row["url"] == photo["url"].replace("/square.", "/medium.")
        assert (data / row["path"]).read_bytes() == world.photo_bytes(photo_id, "medium")
        assert int(row["bytes"]) == len(world.photo_bytes(photo_id, "medium"))
        assert row["observer"] == observation["user"]["login"]
        assert row["observation_url"] == f"https://www.inaturalist.org/observations/{row['observation_id']}"
        assert (float(row["latitude"]), float(row["longitude"])) == (50.09, -104.71)
    variety = by_id[1200]
    assert (variety["taxon_id"], variety["taxon_name"]) == (str(SALICARIA), "Lythrum salicaria")
    assert (variety["observed_taxon_id"], variety["observed_taxon_name"]) == (
        str(VARIETY),
        "Lythrum salicaria tomentosum",
    )
    assert by_id[1000]["license_code"] == "cc-by" and by_id[1001]["license_code"] == "cc-by-nc"


def test_rerun_of_a_finished_job_fetches_nothing(world: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(world, data, "photos", "fetch").exit_code == 0
    before = files(data)
    world.clear_requests()
    result = run(world, data, "photos", "fetch")
    assert result.exit_code == 0, result.output
    assert not world.photo_requests()
    pages = world.requests_to("/v1/observations")
    assert [(r.query["taxon_id"], r.query["id_above"]) for r in pages] == [(f"{SALICARIA},{ALATUM}", "204")]
    assert files(data) == before
    assert len(manifest(data)) == len(before)


def test_photos_csv_is_left_as_it_is_when_nothing_changed(world: InatServer, tmp_path: Path) -> None:
    """A rerun of a finished job does not write the same photos.csv again (a million rows
    would take seconds): the file is the very one the first run wrote."""
    data = tmp_path / "data"
    assert run(world, data, "photos", "fetch").exit_code == 0
    first = os.stat(data / "photos.csv")
    assert run(world, data, "photos", "fetch").exit_code == 0
    again = os.stat(data / "photos.csv")
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert len(manifest(data)) == len(SALICARIA_PHOTOS) + len(ALATUM_PHOTOS)


def test_photos_csv_deleted_or_edited_is_written_again(world: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(world, data, "photos", "fetch").exit_code == 0
    whole = (data / "photos.csv").read_bytes()
    (data / "photos.csv").unlink()
    assert run(world, data, "photos", "fetch").exit_code == 0
    assert (data / "photos.csv").read_bytes() == whole
    (data / "photos.csv").write_bytes(whole[: len(whole) // 2])
    assert run(world, data, "photos", "fetch").exit_code == 0
    assert (data / "photos.csv").read_bytes() == whole


def test_photos_csv_follows_a_photo_gone_and_one_new_in_the_same_run(
    world: InatServer, tmp_path: Path
) -> None:
    """As many photos as before, but not the same ones: photos.csv is written again."""
    data = tmp_path / "data"
    assert run(world, data, "photos", "fetch").exit_code == 0
    (data / "photos/Lythrum_alatum/2000_medium.jpeg").unlink()
    world.add_fault(Fault("status", target="photo", path_contains="/photos/2000/", status=404))
    world.add_observation(250, SALICARIA, photos=[{"id": 2500, "license_code": "cc0"}])
    assert run(world, data, "photos", "fetch").exit_code == 0
    ids = {row["photo_id"] for row in manifest(data)}
    assert "2500" in ids and "2000" not in ids
    assert len(ids) == len(SALICARIA_PHOTOS) + len(ALATUM_PHOTOS)


def test_photos_csv_follows_a_state_changed_by_an_older_inatdl(world: InatServer, tmp_path: Path) -> None:
    """An older inatdl changes the photos without dropping the record of photos.csv (it
    knows none): the fingerprint of the photos tells the rerun to write the file again."""
    data = tmp_path / "data"
    assert run(world, data, "photos", "fetch").exit_code == 0
    with sqlite3.connect(data / "state.sqlite") as db:  # as an older run after a 404
        db.execute("UPDATE photos SET status='gone' WHERE photo_id=2000")
    (data / "photos/Lythrum_alatum/2000_medium.jpeg").unlink()
    assert run(world, data, "photos", "fetch").exit_code == 0
    assert "2000" not in {row["photo_id"] for row in manifest(data)}


def test_new_observations_are_fetched_incrementally(world: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(world, data, "photos", "fetch").exit_code == 0
    # a new observation gets an id above every existing one, as on iNaturalist
    world.add_observation(250, SALICARIA, photos=[{"id": 2500, "license_code": "cc0"}])
    world.clear_requests()
    assert run(world, data, "photos", "fetch").exit_code == 0
    assert [r.path for r in world.photo_requests()] == ["/photos/2500/medium.jpg"]
    assert (data / "photos/Lythrum_salicaria/2500_medium.jpg").read_bytes() == world.photo_bytes(
        2500, "medium"
    )
    assert [r.query["id_above"] for r in world.requests_to("/v1/observations")] == ["204"]
    assert len(manifest(data)) == len(SALICARIA_PHOTOS) + len(ALATUM_PHOTOS) + 1


def test_deleted_file_is_fetched_again(world: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(world, data, "photos", "fetch").exit_code == 0
    (data / "photos/Lythrum_alatum/2000_medium.jpeg").unlink()
    world.clear_requests()
    assert run(world, data, "photos", "fetch").exit_code == 0
    assert [r.path for r in world.photo_requests()] == ["/photos/2000/medium.jpeg"]
    assert files(data) == expected_files(world)


def test_another_size_is_another_set_of_files(world: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(world, data, "photos", "fetch", "--size", "square").exit_code == 0
    assert run(world, data, "photos", "fetch", "--size", "original").exit_code == 0
    assert files(data) == {**expected_files(world, "square"), **expected_files(world, "original")}
    sizes = sorted({r["size"] for r in manifest(data)})
    assert sizes == ["original", "square"]


def test_licence_and_quality_filters(world: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run(
        world, data, "photos", "fetch", "--license", "CC0, cc-by-sa", "--quality", "research,needs_id"
    )
    assert result.exit_code == 0, result.output
    query = world.requests_to("/v1/observations")[0].query
    assert query["photo_license"] == "cc0,cc-by-sa"
    assert query["quality_grade"] == "research,needs_id"
    got = {r["photo_id"]: r["license_code"] for r in manifest(data)}
    assert got == {"1200": "cc0", "1301": "cc-by-sa", **{str(p): "cc0" for p in ALATUM_PHOTOS}}


def test_place_bbox_and_dates_go_to_the_api(world: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run(
        world,
        data,
        "photos",
        "fetch",
        "--place-id",
        "6712",
        "--bbox",
        "40,-110.5,55,-100",
        "--observed-from",
        "2020-01-01",
        "--observed-to",
        "2020-12-31",
    )
    assert result.exit_code == 0, result.output
    query = world.requests_to("/v1/observations")[0].query
    assert {k: query[k] for k in ("place_id", "swlat", "swlng", "nelat", "nelng", "d1", "d2")} == {
        "place_id": "6712",
        "swlat": "40.0",
        "swlng": "-110.5",
        "nelat": "55.0",
        "nelng": "-100.0",
        "d1": "2020-01-01",
        "d2": "2020-12-31",
    }
    assert not manifest(data)  # no observation of this world is in place 6712


def test_max_per_taxon_takes_the_lowest_observation_ids_and_holds_across_runs(
    world: InatServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert run(world, data, "photos", "fetch", "--max-per-taxon", "3").exit_code == 0
    ids = sorted(int(r["photo_id"]) for r in manifest(data) if r["taxon_id"] == str(SALICARIA))
    assert ids == SALICARIA_PHOTOS[:3] == [1000, 1001, 1011]
    world.clear_requests()
    assert run(world, data, "photos", "fetch", "--max-per-taxon", "3").exit_code == 0
    assert not world.photo_requests() and not world.requests_to("/v1/observations")
    assert run(world, data, "photos", "fetch", "--max-per-taxon", "5").exit_code == 0
    ids = sorted(int(r["photo_id"]) for r in manifest(data) if r["taxon_id"] == str(SALICARIA))
    assert ids == SALICARIA_PHOTOS[:5]
    assert len([r for r in manifest(data) if r["taxon_id"] == str(ALATUM)]) == 5


def test_photo_faults_are_retried_and_never_saved(world: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for kind in ("short", "html", "reset", "reset_mid_body", "empty"):
        world.add_fault(Fault(kind, target="photo", first_attempts=1, rate=0.3, seed=hash(kind) % 1000))
    world.add_fault(Fault("status", target="photo", status=503, first_attempts=1, rate=0.2))
    world.add_fault(
        Fault("status", target="photo", status=429, retry_after="3", first_attempts=1, rate=0.1, seed=7)
    )
    clock = FakeClock()
    result = run(world, data, "photos", "fetch", "--workers", "8", clock=clock)
    assert result.exit_code == 0, result.output
    assert files(data) == expected_files(world)
    assert len([r for r in world.photo_requests() if r.fault]) > 5
    assert not list(data.rglob("*.part"))


def test_a_photo_that_keeps_failing_is_reported_and_retried_next_run(
    world: InatServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    fault = world.add_fault(Fault("status", target="photo", status=500, path_contains="/photos/2010/"))
    result = run(world, data, "photos", "fetch")
    assert result.exit_code == 1
    assert "Failed in Lythrum alatum: 1 × HTTP 500" in result.stderr
    assert result.stderr.strip().endswith(
        "Error: 1 photo still failed after their retries (see above); "
        "run the same command again to retry them"
    )
    assert len(world.requests_to("/photos/2010/")) == 5
    assert "photos/Lythrum_alatum/2010_medium.jpeg" not in files(data)
    world.remove_fault(fault)
    world.clear_requests()
    assert run(world, data, "photos", "fetch").exit_code == 0
    assert [r.path for r in world.photo_requests()] == ["/photos/2010/medium.jpeg"]
    assert files(data) == expected_files(world)


def test_dry_run_lists_and_estimates_without_downloading(world: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run(world, data, "photos", "fetch", "--dry-run")
    assert result.exit_code == 0, result.output
    assert not [r for r in world.photo_requests() if r.method == "GET"]
    assert not (data / "photos.csv").exists() or not manifest(data)
    lines = result.stdout.splitlines()
    salicaria = next(line for line in lines if line.startswith("Lythrum salicaria"))
    assert salicaria.split()[2] == str(len(SALICARIA_PHOTOS) + 1)  # the gone photo is not known yet
    assert "Nothing was downloaded (dry run)" in result.stdout
    assert "kB" in salicaria
    # the listing is kept: the real run needs no page walk from the start
    world.clear_requests()
    assert run(world, data, "photos", "fetch").exit_code == 0
    assert [r.query["id_above"] for r in world.requests_to("/v1/observations")] == ["204"]
    assert files(data) == expected_files(world)
    # a second dry run says what the budget windows already hold
    result = run(world, data, "photos", "fetch", "--dry-run")
    spent = format_size(world.bytes_sent())  # the photos, and the error page of the gone one
    assert (
        f"Already downloaded into this data dir in the last hour: {spent}, in the last day: {spent}."
        in result.stdout
    )


def test_fetch_before_resolve_says_what_to_do(inat: InatServer, tmp_path: Path) -> None:
    result = run(inat, tmp_path / "d", "photos", "fetch")
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"Error: no taxa.csv in {tmp_path / 'd'}; run 'inatdl taxa resolve SPECIES_CSV' first\n"
    )
    (tmp_path / "d" / "taxa.csv").write_text(
        "input_name,taxon_id,name,rank,match,observations_count\nlythrum theodori,,,,not_found,\n"
    )
    result = run(inat, tmp_path / "d", "photos", "fetch")
    assert result.exit_code == 1
    assert "has no resolved taxon" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "huge"], "Invalid value for '--size'"),
        (["--hourly-limit", "lots"], "'lots' is not a size"),
        (["--hourly-limit", "10"], "'10' is a size without a unit; write it like 500MB, 5GB or 1.5GiB"),
        (["--daily-limit", "100"], "'100' is a size without a unit; write it like 500MB, 5GB or 1.5GiB"),
        (["--workers", "0"], "Invalid value for '--workers'"),
        (["--workers", "65"], "Invalid value for '--workers'"),
        (["--bbox", "95,0,96,1"], "latitudes must be between -90 and 90"),
        (["--bbox", "1,2,3"], "is not four numbers"),
        (
            ["--observed-from", "2021-01-01", "--observed-to", "2020-01-01"],
            "--observed-from is after --observed-to",
        ),
        (["--observed-from", "yesterday"], "Invalid value for '--observed-from'"),
        (["--observed-to", "2024-13-01"], "'2024-13-01' is not a date written YYYY-MM-DD"),
        (["--license", "cc-by,public"], "choose from cc0, cc-by"),
        (["--max-per-taxon", "0"], "Invalid value for '--max-per-taxon'"),
        (["--place-id", "Camargue"], "'Camargue' is not a valid integer.\n"),
    ],
)
def test_bad_options_are_usage_errors(
    inat: InatServer, tmp_path: Path, args: list[str], message: str
) -> None:
    result = run(inat, tmp_path / "d", "photos", "fetch", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not inat.requests


def test_the_help_names_numbers_n_and_dates_yyyy_mm_dd(inat: InatServer, tmp_path: Path) -> None:
    shown = run(inat, tmp_path / "d", "photos", "fetch", "--help").stdout
    assert re.search(r"--place-id N  +Only observations", shown)
    assert re.search(r"--observed-from YYYY-MM-DD  +Observed on or after", shown)
    assert "INTEGER RANGE" not in shown and "%Y" not in shown


HOSTILE_NAMES = [
    "../../escape",
    "/etc/passwd",
    "a\\b/c",
    "CON",
    "nul",
    "x\x00y\x1b[31mz",
    "..",
    ".",
    "L" * 300,
    "Lythrum × scabrum",
    "Épilobe à feuilles",
    " trailing. ",
]


def test_hostile_taxon_names_stay_inside_the_data_dir(inat: InatServer, tmp_path: Path) -> None:
    inat.add_taxon(1, "Plantae", rank="kingdom")
    for i, name in enumerate(HOSTILE_NAMES):
        inat.add_taxon(100 + i, name, parent_id=1)
        inat.add_observation(1000 + i, 100 + i, photos=[{"id": 5000 + i, "license_code": "cc0"}])
    data = tmp_path / "box" / "data"
    write_taxa(data, [(100 + i, name) for i, name in enumerate(HOSTILE_NAMES)])
    result = run(inat, data, "photos", "fetch")
    assert result.exit_code == 0, result.output
    outside = [p for p in (tmp_path / "box").rglob("*") if data not in p.parents and p != data]
    assert outside == []
    got = files(data)
    assert len(got) == len(HOSTILE_NAMES)
    for path in got:
        folder = path.split("/")[1]
        assert folder not in ("", ".", "..") and "\x00" not in folder and "\x1b" not in folder
        assert len(folder.encode()) <= 120
    assert "photos/Lythrum_×_scabrum/5009_medium.jpg" in got
    assert "photos/_CON/5003_medium.jpg" in got
    by_photo = {r["photo_id"]: r for r in manifest(data)}
    assert by_photo["5000"]["taxon_name"] == "../../escape"  # the name itself is kept as data
    assert (data / by_photo["5000"]["path"]).resolve().is_relative_to(data.resolve())


def test_taxon_with_25000_observations_comes_out_whole(inat: InatServer, tmp_path: Path) -> None:
    """Past the API's 10,000-result window: id_above paging, never a refused page, every
    observation once. The walk is the full 25,000; one observation in 100 has a photo to
    download and the others a flagged one (a placeholder, skipped), so the run stays fast."""
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(10, "Quercus robur", parent_id=1)
    for block in range(250):
        inat.add_observations(10, 99, first_id=block * 100 + 1, flagged=True)
        inat.add_observation((block + 1) * 100, 10, photos=[{"id": (block + 1) * 1000 + 7}])
    inat.photo_size_bytes = {"square": 300}
    data = tmp_path / "data"
    write_taxa(data, [(10, "Quercus robur")])
    result = run(inat, data, "--api-rate", "1000", "photos", "fetch", "--size", "square", "--workers", "8")
    assert result.exit_code == 0, result.output
    pages = inat.requests_to("/v1/observations")
    assert all(r.status == 200 and "page" not in r.query for r in pages)
    assert [int(r.query["id_above"]) for r in pages] == list(range(0, 25_000, 200))  # 125 pages, no gap
    assert "Skipped: 24750 placeholder" in result.stdout
    wanted = {f"{(block + 1) * 1000 + 7}_square.jpg" for block in range(250)}
    assert {p.name for p in (data / "photos" / "Quercus_robur").iterdir()} == wanted
    assert sorted(int(r["observation_id"]) for r in manifest(data)) == list(range(100, 25_001, 100))
    assert len([r for r in inat.photo_requests() if r.method == "GET"]) == 250
    assert inat.connections_opened < 50  # a pooled, kept-alive session, not a connection a photo


def test_downloads_start_while_the_next_page_is_fetched(inat: InatServer, tmp_path: Path) -> None:
    """The API holds the second page until a photo has been asked for: a run that listed
    every page before downloading would never send that photo request first."""
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(10, "Quercus robur", parent_id=1)
    inat.add_observations(10, 1000, first_id=1)
    data = tmp_path / "data"
    write_taxa(data, [(10, "Quercus robur")])
    photo_asked = threading.Event()
    waited: list[bool] = []

    def hold_later_pages(host: str, path: str, query: dict[str, str]) -> None:
        if path.startswith("/photos/"):
            photo_asked.set()
        elif path == "/v1/observations" and query.get("id_above") != "0" and not waited:
            waited.append(photo_asked.wait(timeout=10))

    inat.on_request = hold_later_pages
    assert run(inat, data, "photos", "fetch", "--size", "square").exit_code == 0
    assert waited == [True]
    assert len(inat.requests_to("/v1/observations")) == 5
    assert len(files(data)) == 1000


def test_quiet_prints_nothing_but_errors(world: InatServer, tmp_path: Path) -> None:
    result = run(world, tmp_path / "data", "-q", "photos", "fetch")
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""
    assert len(manifest(tmp_path / "data")) == len(SALICARIA_PHOTOS) + len(ALATUM_PHOTOS)


def test_progress_lines_when_stderr_is_not_a_terminal(world: InatServer, tmp_path: Path) -> None:
    result = run(world, tmp_path / "data", "photos", "fetch")
    assert "paging the observations of Lythrum salicaria" in result.stderr
    photos = len(SALICARIA_PHOTOS) + len(ALATUM_PHOTOS)
    # the last line in the summary's words: + the gone one
    assert f"{photos + 1} photos to download: {photos} new, 1 gone, 0 left; " in result.stderr


def test_max_per_taxon_inside_the_first_observation_is_recorded(world: InatServer, tmp_path: Path) -> None:
    """Observation 100 has two usable photos; a cap of 1 takes the first, and keeps it."""
    data = tmp_path / "data"
    for _ in range(2):
        assert run(world, data, "photos", "fetch", "--max-per-taxon", "1").exit_code == 0
        assert sorted(r["photo_id"] for r in manifest(data)) == ["1000", "2000"]
    asked = sorted(r.path for r in world.photo_requests())  # two workers: either order
    assert asked == ["/photos/1000/medium.jpg", "/photos/2000/medium.jpeg"]


def test_a_dry_run_never_widens_what_a_later_run_downloads(world: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(world, data, "photos", "fetch", "--dry-run", "--max-per-taxon", "10").exit_code == 0
    assert run(world, data, "photos", "fetch", "--license", "cc0", "--max-per-taxon", "3").exit_code == 0
    rows = manifest(data)
    assert {r["license_code"] for r in rows} == {"cc0"}
    assert sorted(int(r["photo_id"]) for r in rows) == [1200, *ALATUM_PHOTOS[:3]]
    # back to the first filters: their walk starts again and finds what it listed
    assert run(world, data, "photos", "fetch", "--max-per-taxon", "3").exit_code == 0
    salicaria = sorted(int(r["photo_id"]) for r in manifest(data) if r["taxon_id"] == str(SALICARIA))
    assert len(salicaria) == 3 and 1200 in salicaria  # the cc0 photo counts: it is downloaded


def test_odd_values_in_the_api_json_are_kept_out_of_the_manifest(world: InatServer, tmp_path: Path) -> None:
    odd = {"total_results": 1, "results": [{
        "id": 900, "taxon": {"id": "61299x", "name": 7}, "user": {"login": ["x"]}, "quality_grade": {"a": 1},
        "observed_on": 20200101, "uri": None,
        "photos": [{"id": 9000, "license_code": "cc0", "url": world.photo_url(1000), "attribution": None}],
    }]}  # fmt: skip
    world.add_fault(Fault("status", target="observations", status=200, body=json.dumps(odd), times=1))
    data = tmp_path / "data"
    # one taxon asked: an observation whose taxon the API garbles can only be that one's
    write_taxa(data, [(SALICARIA, "Lythrum salicaria")])
    result = run(world, data, "photos", "fetch")
    assert result.exit_code == 0, result.output
    row = next(r for r in manifest(data) if r["photo_id"] == "9000")
    assert row["observed_taxon_id"] == row["observed_taxon_name"] == row["observer"] == ""
    assert row["observation_url"] == "https://www.inaturalist.org/observations/900"
    assert run(world, data, "photos", "fetch").exit_code == 0  # and the next run is fine too


def test_manifest_and_taxa_files_follow_the_umask(world: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(world, data, "photos", "fetch").exit_code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((data / "photos.csv").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((data / "taxa.csv").stat().st_mode) == 0o666 & ~umask


def test_an_unreadable_taxa_csv_is_told_as_such(inat: InatServer, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "taxa.csv").write_bytes(b"\xff\xfe garbage")
    result = run(inat, tmp_path / "d", "photos", "fetch")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: cannot read {tmp_path / 'd' / 'taxa.csv'} (it is not UTF-8 text); "
        "run 'inatdl taxa resolve SPECIES_CSV' again to rewrite it\n"
    )


def test_manifest_written_in_chunks_is_the_same(world: InatServer, tmp_path: Path) -> None:
    from inatdl.manifest import write_manifest
    from inatdl.state import Store

    data = tmp_path / "data"
    assert run(world, data, "photos", "fetch").exit_code == 0
    store = Store(data / "state.sqlite", FakeClock())
    write_manifest(store, tmp_path / "chunked.csv", batch_rows=4)
    store.close()
    assert (tmp_path / "chunked.csv").read_bytes() == (data / "photos.csv").read_bytes()
    assert len(manifest(data)) == len(SALICARIA_PHOTOS) + len(ALATUM_PHOTOS)


def test_photos_are_asked_for_without_compression(world: InatServer, tmp_path: Path) -> None:
    assert run(world, tmp_path / "data", "photos", "fetch").exit_code == 0
    assert {r.header("Accept-Encoding") for r in world.photo_requests()} == {"identity"}


def test_a_run_stopping_with_a_full_queue_keeps_every_workers_stop() -> None:
    """At a stop, the jobs not started are dropped but the stops already queued for the
    workers stay: without one, a worker would wait for a job forever and the run hang."""
    jobs = JobQueue(2)
    job = PhotoJob(1, "medium", "http://host/photos/1/medium.jpg", "photos/x/1_medium.jpg", 7)
    assert jobs.put(job, timeout=1.0)
    assert jobs.put(None, timeout=1.0)  # a worker's stop
    assert not jobs.put(None, timeout=0.01)  # full
    jobs.clear()
    got: list[PhotoJob | None] = []
    worker = threading.Thread(target=lambda: got.append(jobs.get()), daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert got == [None]
