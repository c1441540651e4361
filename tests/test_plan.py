"""The query plan of `photos fetch`, decided without any I/O."""

from __future__ import annotations

from collections.abc import Sequence

from inatdl.observations import lineage
from inatdl.plan import Query, QueryWalk, most_specific, plan_queries


def test_taxa_at_the_same_cursor_share_a_query_lowest_cursor_first() -> None:
    cursors = {30: 500, 10: 500, 20: 0, 40: 500}
    assert plan_queries(cursors) == [Query((20,), 0), Query((10, 30, 40), 500)]


def test_a_query_holds_at_most_per_query_taxa() -> None:
    cursors = dict.fromkeys(range(1, 8), 0)
    assert plan_queries(cursors, per_query=3) == [
        Query((1, 2, 3), 0),
        Query((4, 5, 6), 0),
        Query((7,), 0),
    ]
    assert plan_queries({}) == []


def test_an_observation_goes_to_its_most_specific_listed_taxon() -> None:
    variety = [1, 47120, 61298, 61299, 70001]  # root first, the variety itself last
    assert most_specific(variety, {61299, 70001}) == 70001
    assert most_specific(variety, {61299, 61300}) == 61299
    assert most_specific(variety, {61298, 61299}) == 61299  # the species, not the genus
    assert most_specific(variety, {61300}) is None


def test_lineage_from_the_api_json() -> None:
    observation = {"taxon": {"id": 48662, "ancestor_ids": [48460, 1, 47120, 48662]}}
    assert lineage(observation) == [48460, 1, 47120, 48662]
    assert lineage({"taxon": {"id": 48662}}) == [48662]  # no ancestors given: the taxon itself
    assert lineage({"taxon": {"id": 5, "ancestor_ids": [1, 2]}}) == [1, 2, 5]
    assert lineage({"taxon": {"id": "5x", "ancestor_ids": "1,2"}}) == []
    assert lineage({"taxon": None}) == [] == lineage({})


def test_a_walk_moves_every_taxon_still_asked_and_drops_a_capped_one() -> None:
    walk = QueryWalk(Query((10, 20, 30), 100))
    walk.page_done(300)
    walk.drop(20, 250)  # capped: complete up to the observation before its last
    walk.page_done(500)
    assert walk.active == [10, 30]
    assert walk.cursors == {10: 500, 20: 250, 30: 500}
    walk.finished(900)  # the walk ended: complete up to any id known to exist by then
    assert walk.cursors == {10: 900, 20: 250, 30: 900}
    walk.finished(400)
    assert walk.cursors == {10: 900, 20: 250, 30: 900}  # never backwards


def test_taxa_further_on_join_a_query_below_them_when_it_pages_less_than_a_page_again() -> None:
    cursors = {10: 0, 20: 100, 30: 150, 40: 900}
    recorded = {20: 5, 30: 120, 40: 400}  # observations each has recorded below its cursor

    def between(taxa: Sequence[int], above: int, up_to: int) -> int:
        assert above < up_to
        return sum(recorded[t] for t in taxa)

    assert plan_queries(cursors, recorded=between) == [
        Query((10, 20, 30), 0, behind=((20, 100), (30, 150))),
        Query((40,), 900),
    ]
    assert plan_queries(cursors) == [Query((10,), 0), Query((20,), 100), Query((30,), 150), Query((40,), 900)]
    walk = QueryWalk(Query((10, 20), 0, behind=((20, 100),)))
    assert walk.cursors == {10: 0, 20: 100}
    walk.page_done(50)
    assert walk.cursors == {10: 50, 20: 100}  # never backwards
