"""The query plan of `photos fetch`: which taxa share an /observations query, from where,
and which listed taxon each observation belongs to. Pure decisions, no I/O.

A job's cost is its API requests, so taxa are asked many at a time (``taxon_id=a,b,c``)
and each observation goes to the most specific listed taxon in its lineage. Every taxon
keeps its own cursor (the last observation id up to which all its photos are recorded);
taxa whose cursors stand at the same place walk together, so a finished job, whose walks
all end at the same place, is asked again in one page per query.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from inatdl.constants import TAXA_PER_QUERY


@dataclass(frozen=True)
class Query:
    """Taxa walked together from the same cursor, in taxon id order."""

    taxon_ids: tuple[int, ...]
    after_id: int


def plan_queries(cursors: Mapping[int, int], per_query: int = TAXA_PER_QUERY) -> list[Query]:
    """Queries for taxa whose cursors are ``cursors`` (taxon id → last id), lowest cursor first.

    Taxa standing at the same id share queries of up to ``per_query`` taxa (to keep the URL
    short); a taxon whose walk stands elsewhere (newly listed, capped before, another
    filter's walk) gets its own, and never makes the others walk again.
    """
    by_cursor: dict[int, list[int]] = {}
    for taxon_id, last_id in cursors.items():
        by_cursor.setdefault(last_id, []).append(taxon_id)
    queries = []
    for last_id in sorted(by_cursor):
        taxa = sorted(by_cursor[last_id])
        for start in range(0, len(taxa), per_query):
            queries.append(Query(tuple(taxa[start : start + per_query]), last_id))
    return queries


def most_specific(lineage: Sequence[int], listed: Collection[int]) -> int | None:
    """The listed taxon an observation belongs to: the last of its lineage (root first,
    its own taxon last) that is listed; so a variety's observations go to the variety when
    it is listed, to its species otherwise. None when no listed taxon is in the lineage."""
    for taxon_id in reversed(lineage):
        if taxon_id in listed:
            return taxon_id
    return None


@dataclass
class QueryWalk:
    """A query being paged: which of its taxa are still asked for, and each one's cursor."""

    query: Query
    active: list[int] = field(default_factory=list)
    cursors: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.active = list(self.query.taxon_ids)
        self.cursors = dict.fromkeys(self.query.taxon_ids, self.query.after_id)

    def drop(self, taxon_id: int, complete_up_to: int) -> None:
        """A taxon reached its cap: ask no more for it; its walk stands at ``complete_up_to``."""
        self.active.remove(taxon_id)
        self.cursors[taxon_id] = complete_up_to

    def page_done(self, last_id: int) -> None:
        """Every taxon still asked for has all its photos up to ``last_id`` recorded."""
        for taxon_id in self.active:
            self.cursors[taxon_id] = max(self.cursors[taxon_id], last_id)

    def finished(self, seen_up_to: int) -> None:
        """The walk came to its end, so the taxa still asked for are complete up to any id
        that existed by then; ``seen_up_to`` is such an id (the highest seen so far).

        Moving them there lets walks that end at different places (a taxon added to the
        list, an old state file) stand together again at the next run.
        """
        self.page_done(seen_up_to)
