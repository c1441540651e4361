"""api_listing.route_page, the routing of a page as data: which rows, moves, skips and caps
a page of observations makes, with no I/O (style example 21: decisions as data)."""

from __future__ import annotations

from typing import Any

from inatdl.api_listing import route_page
from inatdl.observations import Filters
from inatdl.plan import Query, QueryWalk
from inatdl.report import TaxonReport
from inatdl.source import Job, ListedTaxon, Move
from inatdl.state import DONE, PENDING, Skip

SPECIES, VARIETY = 10, 11
LICENCES = ("cc0", "cc-by")


class Quiet:
    def listing(self, taxon: str) -> None: ...
    def listing_open_data(self, taxa: int) -> None: ...
    def paged(self, done: int, left: int) -> None: ...


def job(cap: int | None = None, held: int = 0) -> Job:
    taxa = {
        t: ListedTaxon(t, name, f"photos/{name}", f"key-{t}", 0, held, TaxonReport(t, name))
        for t, name in ((SPECIES, "Species"), (VARIETY, "Variety"))
    }
    return Job(taxa, "small", Filters(LICENCES), cap, Quiet())


def observation(
    obs_id: int, taxon: int, *licences: str | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    photos = [
        {"id": obs_id * 10 + k, "license_code": code, "url": f"https://h/photos/{obs_id * 10 + k}/square.jpg"}
        for k, code in enumerate(licences)
    ]
    return {"id": obs_id, "taxon": {"id": taxon, "name": "x"}, "photos": photos}, photos


def test_each_photo_goes_to_its_observations_taxon_and_refused_ones_are_skips() -> None:
    page = [observation(1, SPECIES, "cc0", None), observation(2, VARIETY, "cc-by")]
    routed = route_page(page, {1: SPECIES, 2: VARIETY}, {}, QueryWalk(Query((SPECIES, VARIETY), 0)), job(), 0)
    assert [(r.photo_id, r.taxon_id, r.path, r.query) for r in routed.rows] == [
        (10, SPECIES, "photos/Species/10_small.jpg", f"key-{SPECIES}"),
        (20, VARIETY, "photos/Variety/20_small.jpg", f"key-{VARIETY}"),
    ]
    assert routed.skips == [Skip(11, "small", f"key-{SPECIES}", SPECIES, "licence")]
    assert routed.held == {SPECIES: 1, VARIETY: 1} and not routed.moves and not routed.drops


def test_a_cap_inside_an_observation_leaves_the_taxon_before_that_observation() -> None:
    page = [observation(5, SPECIES, "cc0"), observation(6, SPECIES, "cc0", "cc0")]
    routed = route_page(page, {5: SPECIES, 6: SPECIES}, {}, QueryWalk(Query((SPECIES,), 4)), job(cap=2), 4)
    assert [r.photo_id for r in routed.rows] == [50, 60]
    assert routed.drops == {SPECIES: 5}  # observation 6 only partly kept: its cursor stays at 5


def test_a_cap_reached_at_the_end_of_an_observation_leaves_the_taxon_after_it() -> None:
    page = [observation(5, SPECIES, "cc0"), observation(6, SPECIES, "cc0"), observation(7, SPECIES, "cc0")]
    walk = QueryWalk(Query((SPECIES,), 4))
    routed = route_page(page, {5: SPECIES, 6: SPECIES, 7: SPECIES}, {}, walk, job(cap=2), 4)
    assert [r.photo_id for r in routed.rows] == [50, 60] and routed.drops == {SPECIES: 6}


def test_a_photo_downloaded_under_the_species_moves_to_the_variety_listed_since() -> None:
    page = [observation(3, VARIETY, "cc0", "cc0")]
    recorded = {
        30: (DONE, SPECIES, "photos/Species/30_small.jpg"),
        31: (PENDING, SPECIES, "photos/Species/31_small.jpg"),
    }
    routed = route_page(page, {3: VARIETY}, recorded, QueryWalk(Query((SPECIES, VARIETY), 0)), job(), 0)
    assert not routed.rows  # 31 is pending under the species: recorded, not listed again
    [move] = routed.moves
    assert move == Move(move.row, SPECIES, "photos/Species/30_small.jpg")
    assert (move.row.taxon_id, move.row.path) == (VARIETY, "photos/Variety/30_small.jpg")


def test_observations_a_walk_has_passed_or_of_a_taxon_not_asked_are_left_alone() -> None:
    page = [observation(3, SPECIES, "cc0"), observation(8, VARIETY, "cc0")]
    walk = QueryWalk(Query((SPECIES,), 0, behind=((SPECIES, 5),)))
    routed = route_page(page, {3: SPECIES, 8: VARIETY}, {}, walk, job(), 0)
    assert not routed.rows and not routed.skips and not routed.held
