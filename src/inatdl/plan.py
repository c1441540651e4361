"""The query plan of `photos fetch`: which taxa share an /observations query, from where,
and which listed taxon each observation belongs to. Pure decisions, no I/O.

A job's cost is its API requests, so taxa are asked many at a time (``taxon_id=a,b,c``)
and each observation goes to the most specific listed taxon in its lineage. Every taxon
keeps its own cursor (the last observation id up to which all its photos are recorded);
taxa whose cursors stand at the same place walk together, so a finished job, whose walks
all end at the same place, is asked again in one page per query; and taxa standing a little
further on (capped at scattered places) join a walk that passes few of their photos again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from inatdl.constants import OBSERVATIONS_PER_PAGE, TAXA_PER_QUERY

# How many observations of these taxa above the first id and up to the second are recorded.
Recorded = Callable[[Sequence[int], int, int], int]


@dataclass(frozen=True)
class Query:
    """Taxa walked together from ``after_id``, in taxon id order; ``behind`` names those whose
    own cursor stands further on (id, cursor): the walk passes their recorded observations."""

    taxon_ids: tuple[int, ...]
    after_id: int
    behind: tuple[tuple[int, int], ...] = ()


def plan_queries(
    cursors: Mapping[int, int], per_query: int = TAXA_PER_QUERY, recorded: Recorded | None = None
) -> list[Query]:
    """Queries for taxa whose cursors are ``cursors`` (taxon id → last id), lowest cursor first.

    Taxa standing at the same id share queries of up to ``per_query`` taxa (to keep the URL
    short). Taxa standing further on join a query started below them when it would page
    again fewer than a page of their observations already recorded (``recorded``): so taxa
    capped at scattered places walk together when the cap is raised, not one query each,
    while a taxon newly listed never makes the others walk again.
    """
    by_cursor: dict[int, list[int]] = {}
    for taxon_id, last_id in cursors.items():
        by_cursor.setdefault(last_id, []).append(taxon_id)
    runs: list[tuple[int, list[int]]] = []  # (where the walk starts, its taxa)
    for last_id in sorted(by_cursor):
        taxa = by_cursor[last_id]
        if runs and recorded is not None and recorded(taxa, runs[-1][0], last_id) < OBSERVATIONS_PER_PAGE:
            runs[-1][1].extend(taxa)
        else:
            runs.append((last_id, taxa))
    queries = []
    for _, run in runs:
        taxa = sorted(run)
        for start in range(0, len(taxa), per_query):
            chunk = taxa[start : start + per_query]
            after_id = min(cursors[taxon_id] for taxon_id in chunk)
            behind = tuple((t, cursors[t]) for t in chunk if cursors[t] > after_id)
            queries.append(Query(tuple(chunk), after_id, behind))
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
        self.cursors.update(self.query.behind)

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
