"""--max-per-taxon on the edges the everyday data never crosses: a cap that falls inside an
observation, a cap with failed photos, and more than a batch of photos left to retry
(issue 22, "Tests that did not bite")."""

from __future__ import annotations

from pathlib import Path

from inat_server import Fault, InatServer
from test_summary import COLUMNS, add_up, table
from world import ALATUM, SALICARIA, SALICARIA_PHOTOS, manifest, run, write_taxa


def photo_ids(data: Path, taxon_id: int) -> list[int]:
    return sorted(int(r["photo_id"]) for r in manifest(data) if r["taxon_id"] == str(taxon_id))


def test_a_cap_raised_after_it_fell_inside_an_observation_gets_the_rest_of_it(
    world: InatServer, tmp_path: Path
) -> None:
    """Observation 100 has two photos: a cap of 1 keeps the first, and its cursor stays
    before observation 100, so a cap of 2 gets the second, not one of observation 101."""
    data = tmp_path / "data"
    assert run(world, data, "photos", "fetch", "--max-per-taxon", "1").exit_code == 0
    assert photo_ids(data, SALICARIA) == [1000]
    assert run(world, data, "photos", "fetch", "--max-per-taxon", "2").exit_code == 0
    assert photo_ids(data, SALICARIA) == [1000, 1001] == SALICARIA_PHOTOS[:2]


def test_a_photo_that_failed_counts_under_the_cap_when_it_is_retried(
    world: InatServer, tmp_path: Path
) -> None:
    """Cap 2: the second photo fails in the first run; the rerun retries it and lists no
    other, so the taxon ends with 2 photos, not 3."""
    data = tmp_path / "data"
    world.add_fault(Fault("status", target="photo", path_contains="/1001/", status=500))
    result = run(world, data, "photos", "fetch", "--max-per-taxon", "2")
    assert result.exit_code == 1 and "1 photo still failed" in result.output
    assert photo_ids(data, SALICARIA) == [1000]
    rows = table(result.stdout, COLUMNS)
    add_up(rows)
    assert rows["Lythrum salicaria"]["failed"] == 1 and rows["Lythrum salicaria"]["left"] == 0
    world.clear_faults()
    world.clear_requests()
    result = run(world, data, "photos", "fetch", "--max-per-taxon", "2")
    assert result.exit_code == 0
    rows = table(result.stdout, COLUMNS)
    add_up(rows)
    assert [rows["Lythrum salicaria"][c] for c in ("had", "new", "failed", "left")] == [1, 1, 0, 0]
    assert photo_ids(data, SALICARIA) == [1000, 1001]
    assert photo_ids(data, ALATUM) == [2000, 2010]
    assert sorted(r.path for r in world.photo_requests()) == ["/photos/1001/medium.jpg"]


def test_more_than_a_thousand_photos_left_by_a_dry_run_are_all_downloaded(
    inat: InatServer, tmp_path: Path
) -> None:
    """The photos left to do are read from the state a thousand at a time: the run after a
    dry run that listed 1,050 downloads every one of them, not the first thousand."""
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(10, "Lythrum salicaria", parent_id=1)
    inat.photo_size_bytes = {"square": 50}
    inat.add_observations(10, 1050, first_id=1000)
    data = tmp_path / "data"
    write_taxa(data, [(10, "Lythrum salicaria")])
    fetch = ("photos", "fetch", "--size", "square", "--workers", "8")
    assert run(inat, data, *fetch, "--dry-run").exit_code == 0
    inat.clear_requests()
    result = run(inat, data, *fetch)
    assert result.exit_code == 0, result.output
    assert len(inat.photo_requests()) == 1050
    assert len(manifest(data)) == 1050
