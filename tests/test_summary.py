"""The summary's columns add up on every run: listed = had + new + failed + gone + skipped +
left, however the run ended (issue 22, item 6), and a dry run reports the photos the filters
refuse as a real run does (item 7)."""

from __future__ import annotations

from pathlib import Path

from inat_server import InatServer
from test_stop import complete_photos, interrupt_at_photo
from world import run, write_taxa

COLUMNS = ("listed", "had", "new", "failed", "gone", "skipped", "left")
DRY_COLUMNS = ("to download", "skipped")
# The Lythrum world (tests/world.py): salicaria's 29 photos listed (9 of no licence asked,
# 1 placeholder, 1 gone), alatum's 5.
LISTED = {"Lythrum salicaria": 29, "Lythrum alatum": 5}
SKIPPED = {"Lythrum salicaria": 10, "Lythrum alatum": 0}


def table(stdout: str, columns: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """The summary's rows by taxon (and "total"): the numbers after the 30-character name."""
    header = next(i for i, line in enumerate(stdout.splitlines()) if line.startswith("taxon "))
    rows: dict[str, dict[str, int]] = {}
    for line in stdout.splitlines()[header + 1 :]:
        numbers = line[30:].split()[: len(columns)]
        if len(numbers) < len(columns) or not all(n.isdigit() for n in numbers):
            break
        rows[line[:30].strip()] = dict(zip(columns, map(int, numbers), strict=True))
    return rows


def add_up(rows: dict[str, dict[str, int]]) -> None:
    for name, row in rows.items():
        parts = row["had"] + row["new"] + row["failed"] + row["gone"] + row["skipped"] + row["left"]
        assert row["listed"] == parts, (name, row)


def test_the_columns_add_up_over_a_dry_run_an_interrupted_run_and_reruns(
    world: InatServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    fetch = ("photos", "fetch", "--workers", "2")
    dry = run(world, data, *fetch, "--dry-run")
    assert dry.exit_code == 0, dry.output
    planned = table(dry.stdout, DRY_COLUMNS)
    assert {name: row["skipped"] for name, row in planned.items() if name != "total"} == SKIPPED
    assert "Skipped: 9 licence, 1 placeholder" in dry.stdout
    to_download = {name: LISTED[name] - SKIPPED[name] for name in LISTED}
    assert {name: row["to download"] for name, row in planned.items() if name != "total"} == to_download

    first = interrupt_at_photo(world, 6)
    stopped = run(world, data, *fetch)
    assert first.is_set() and stopped.exit_code == 130, stopped.output
    rows = table(stopped.stdout, COLUMNS)
    add_up(rows)
    on_disk = len(complete_photos(data))
    assert 5 <= on_disk < sum(to_download.values()) - 1
    assert rows["total"]["new"] == on_disk and rows["total"]["had"] == 0
    assert {name: row["listed"] for name, row in rows.items() if name != "total"} == LISTED
    assert {name: row["skipped"] for name, row in rows.items() if name != "total"} == SKIPPED
    assert rows["total"]["left"] > 0
    assert "Skipped: 9 licence, 1 placeholder" in stopped.stdout

    world.on_request = None
    finished = run(world, data, *fetch)
    assert finished.exit_code == 0, finished.output
    rows = table(finished.stdout, COLUMNS)
    add_up(rows)
    assert rows["total"]["had"] == on_disk and rows["total"]["left"] == 0
    assert rows["total"]["had"] + rows["total"]["new"] == len(complete_photos(data)) == 23

    again = run(world, data, *fetch)
    assert again.exit_code == 0, again.output
    rows = table(again.stdout, COLUMNS)
    add_up(rows)
    total = rows["total"]
    assert (total["had"], total["new"], total["failed"], total["left"], total["skipped"]) == (23, 0, 0, 0, 10)
    assert "Skipped: 9 licence, 1 placeholder" in again.stdout


def test_a_taxon_whose_photos_are_all_rights_reserved_says_why_it_has_none(
    inat: InatServer, tmp_path: Path
) -> None:
    """The API's licence filter leaves out its observations, so nothing is listed: one
    request counts them without the filter, and the summary says why the taxon has 0."""
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(10, "Lythrum salicaria", parent_id=1)
    inat.add_taxon(20, "Lythrum alatum", parent_id=1)
    inat.add_observations(10, 3, first_id=1000, license_codes=(None,))
    inat.add_observations(20, 2, first_id=2000)
    data = tmp_path / "data"
    write_taxa(data, [(10, "Lythrum salicaria"), (20, "Lythrum alatum")])
    why = (
        "Lythrum salicaria: no photo to download: none of its 3 observations with photos has one "
        "under the licences asked (all rights reserved, or see --license)."
    )
    result = run(inat, data, "photos", "fetch", "--dry-run")
    assert result.exit_code == 0, result.output
    assert why in result.stdout and "Lythrum alatum:" not in result.stdout
    counted = [r.query for r in inat.requests_to("/v1/observations") if r.query.get("per_page") == "0"]
    assert len(counted) == 1 and "photo_license" not in counted[0] and counted[0]["taxon_id"] == "10"
    inat.clear_requests()
    result = run(inat, data, "photos", "fetch")  # a real run asks only what its listing needs
    assert result.exit_code == 0, result.output
    assert (
        "Lythrum salicaria: no photo under these filters (--dry-run tells whether it has photos "
        "under other licences)." in result.stdout
    )
    assert "Lythrum alatum:" not in result.stdout
    assert not [r for r in inat.requests_to("/v1/observations") if r.query.get("per_page") == "0"]
