"""The API listing, the first :class:`~inatdl.source.PhotoSource`: pages /observations for
the job's query plan (plan.py) and routes each photo to the most specific listed taxon.

Routing is data: :func:`route_page` turns a page into new rows, moves (a photo downloaded
under a taxon whose observation now goes to a more specific listed taxon), skips and the
caps they change, with no I/O; :meth:`ApiListing._route` applies the caps to the job and
its walk, and the rows, moves and skips go in a batch for feed.py to apply. The only
requests besides the pages are the bisection of observations whose lineage names no listed
taxon (:func:`place`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from inatdl.client import JSON, ApiClient
from inatdl.constants import OBSERVATIONS_PER_PAGE
from inatdl.jsonvalues import results_of
from inatdl.observations import (
    Filters,
    choose_photo,
    lineage,
    observation_fields,
    observation_pages,
    observation_photos,
)
from inatdl.photo import PhotoRecord
from inatdl.plan import Query, QueryWalk, most_specific, plan_queries
from inatdl.source import Batch, Job, Move
from inatdl.state import DONE, Cursor, Skip, Store

Recorded = Mapping[int, tuple[str, int, str]]  # photo id → status, taxon id, path (Store.recorded)


@dataclass
class Routed:
    """What one page of observations changes: rows to record, moves, skips, and caps."""

    rows: list[PhotoRecord] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)  # photos the filters refuse
    held: dict[int, int] = field(default_factory=dict)  # photos each taxon holds after the page
    drops: dict[int, int] = field(default_factory=dict)  # capped taxa: complete up to this id


def route_page(
    page: Sequence[tuple[JSON, list[JSON]]],
    routes: Mapping[int, int | None],
    recorded: Recorded,
    walk: QueryWalk,
    job: Job,
    before: int,
) -> Routed:
    """The new photos of a page (each observation with its photos), each to its
    observation's taxon (``routes``), each taxon up to --max-per-taxon; a taxon that
    reaches it is dropped from the walk, complete up to the observation before
    (``before``: at first, the last observation of the page before this one).

    ``recorded`` holds the page's photos already in the state: those are not new, but one
    downloaded under another taxon moves to the taxon it now goes to.
    """
    size, cap, licenses = job.size, job.max_per_taxon, job.filters.licenses
    known = set(recorded)
    homes = {pid: (taxon, path) for pid, (status, taxon, path) in recorded.items() if status == DONE}
    routed = Routed()
    for observation, photos in page:
        fields = observation_fields(observation)
        observation_id = fields["observation_id"]
        taxon_id = routes[observation_id]
        # capped, another query's, or recorded already (its taxon joined from further on)
        if (
            taxon_id is None
            or taxon_id not in walk.active
            or taxon_id in routed.drops
            or observation_id <= walk.cursors[taxon_id]
        ):
            before = observation_id
            continue
        taxon = job.taxa[taxon_id]
        held = routed.held.get(taxon_id, taxon.held)
        capped_inside = False
        for photo in photos:
            choice = choose_photo(photo, licenses, size)
            if choice.skip:
                routed.skips.append(Skip(choice.photo_id, size, taxon.key, taxon_id, choice.skip))
                continue
            home = homes.get(choice.photo_id)
            if choice.photo_id in known and (home is None or home[0] == taxon_id):
                continue
            if cap is not None and held >= cap:
                capped_inside = True
                break
            held += 1
            known.add(choice.photo_id)
            row = PhotoRecord(
                photo_id=choice.photo_id,
                size=size,
                taxon_id=taxon_id,
                taxon_name=taxon.name,
                url=choice.url,
                path=taxon.path(choice.photo_id, size, choice.extension),
                license_code=choice.license_code,
                attribution=choice.attribution,
                query=taxon.key,
                **fields,
            )
            if home is None:
                routed.rows.append(row)
            else:
                routed.moves.append(Move(row, *home))
        routed.held[taxon_id] = held
        if capped_inside:  # what the cap allowed of this observation is kept, the rest not
            routed.drops[taxon_id] = before
        elif cap is not None and held >= cap:
            routed.drops[taxon_id] = observation_id
        before = observation_id
    return routed


class ApiListing:
    """Lists a job's photos from /observations, query by query of the plan."""

    def __init__(
        self, client: ApiClient, store: Store, filters: Filters, explain_empty: bool = False
    ) -> None:
        self.client = client
        self.store = store
        self.filters = filters
        self.explain_empty = explain_empty  # ask why a taxon has no photo (--dry-run: the plan)
        self.pages_done = 0  # observation pages this run, for progress and the report
        self.queries_left = 0  # queries of the plan not started yet
        self.seen_up_to = 0  # the highest observation id known to exist (see QueryWalk.finished)

    def key(self, taxon_id: int, size: str) -> str:
        return self.filters.key(taxon_id, size)

    def batches(self, job: Job) -> Iterator[Batch]:
        """A batch a page of each query of the plan, and one when a walk ends."""
        for _, batch in self.sized_batches([job]):
            yield batch

    def sized_batches(self, jobs: Sequence[Job]) -> Iterator[tuple[Job, Batch]]:
        """The batches of every job (one a size, the same taxa), from one walk: each page
        is asked once and routed for each size; a batch a page and size, and one a size
        when a walk ends."""
        cursors: dict[int, int] = {}  # where the walk of each taxon starts: its lowest cursor
        for size_job in jobs:
            for taxon_id, after in size_job.to_list().items():
                cursors[taxon_id] = min(after, cursors.get(taxon_id, after))

        def recorded(taxa: Sequence[int], above: int, up_to: int) -> int:  # at the size that has most
            return max(self.store.observations_recorded(taxa, j.size, above, up_to) for j in jobs)

        queries = plan_queries(cursors, recorded=recorded)
        self.seen_up_to = self.store.highest_cursor()
        for number, query in enumerate(queries):
            self.queries_left = len(queries) - number - 1
            yield from self._walk(query, jobs)
        if self.explain_empty:
            for size_job in jobs:
                self._explain_empty(size_job)

    def _explain_empty(self, job: Job) -> None:
        """For a taxon that has no photo listed at all, the observations with photos that
        the licence filter left out: one request each, so the summary can say why it has 0
        (its photos are all rights reserved, or under licences not asked for). Asked by a
        dry run only: a real run's requests stay those of the listing."""
        for taxon in job.taxa.values():
            if taxon.held or self.store.skip_counts(taxon.key):
                continue
            params = {k: v for k, v in self.filters.params([taxon.taxon_id]).items() if k != "photo_license"}
            answer = self.client.get("observations", {**params, "per_page": 0})
            total = answer.get("total_results")
            if isinstance(total, int) and not isinstance(total, bool) and total > 0:
                taxon.report.other_licences = total

    def _walk(self, query: Query, jobs: Sequence[Job]) -> Iterator[tuple[Job, Batch]]:
        """Page one query, each observation to its most specific listed taxon, for each size
        from that size's own cursors; a taxon that reaches its cap at a size leaves that size's
        walk, and the query when no size asks for it; the cursors move with each page's photos.

        Progress hears a page's photos, then the pages left, before its batches are yielded
        (ListingProgress): the last page's photos are in the job's total as it is told done."""
        walks = [(job, _size_walk(query, job)) for job in jobs]
        taxa, progress = jobs[0].taxa, jobs[0].progress  # the same for every size
        progress.listing(_names([taxa[taxon_id].name for taxon_id in query.taxon_ids]))
        progress.paged(self.pages_done, 1 + self.queries_left)
        position = query.after_id
        pages_left = 1  # of this query, as the last page asked said
        told = self.pages_done  # the pages done as progress last heard them

        def remaining(observations: int) -> None:
            nonlocal pages_left
            self.pages_done += 1
            pages_left = -(-observations // OBSERVATIONS_PER_PAGE)

        def active() -> list[int]:  # the taxa some size still asks for; capped ones are left out
            asked = {taxon_id for _, walk in walks for taxon_id in walk.active}
            return [taxon_id for taxon_id in query.taxon_ids if taxon_id in asked]

        def params() -> dict[str, Any]:  # asked before each page
            return self.filters.params(active())

        for page in observation_pages(self.client, params, query.after_id, remaining):
            photos = [(observation, observation_photos(observation)) for observation in page]
            routes = self._routes(page, taxa, active())
            last = max(int(o["id"]) for o in page)
            self.seen_up_to = max(self.seen_up_to, last)
            batches = []
            for size_job, walk in walks:
                if not walk.active:  # every taxon of this size capped: its cursors are saved
                    continue
                routed = self._route(photos, routes, walk, size_job, position)
                walk.page_done(last)
                batches.append(
                    (size_job, Batch(routed.rows, _cursors(walk, size_job), routed.moves, routed.skips))
                )
            progress.listed(sum(len(batch.rows) for _, batch in batches))
            progress.paged(self.pages_done, pages_left + self.queries_left)
            told = self.pages_done
            yield from batches
            position = last
            if not active():  # every taxon capped at every size: its pages left are not asked
                progress.paged(self.pages_done, self.queries_left)
                return
        if told != self.pages_done:  # the last page asked was empty
            progress.paged(self.pages_done, self.queries_left)
        for size_job, walk in walks:
            walk.finished(self.seen_up_to)
            yield size_job, Batch([], _cursors(walk, size_job))

    def _routes(
        self, page: Sequence[JSON], taxa: Mapping[int, Any], asked: Sequence[int]
    ) -> dict[int, int | None]:
        """Each observation's listed taxon (placing by request those whose lineage names no
        listed taxon, among the ``asked`` taxa the page was asked for): once a page, for
        every size."""
        routes: dict[int, int | None] = {int(o["id"]): most_specific(lineage(o), taxa) for o in page}
        unplaced = [observation_id for observation_id, taxon_id in routes.items() if taxon_id is None]
        if unplaced:
            routes.update(place(self.client, self.filters, unplaced, asked))
        return routes

    def _route(
        self,
        photos: Sequence[tuple[JSON, list[JSON]]],
        routes: Mapping[int, int | None],
        walk: QueryWalk,
        job: Job,
        position: int,
    ) -> Routed:
        """Route a page for one size, and apply what it changes to the job's taxa and walk."""
        photo_ids = [p["id"] for _, listed_photos in photos for p in listed_photos]
        recorded = self.store.recorded(photo_ids, job.size)
        routed = route_page(photos, routes, recorded, walk, job, position)
        for taxon_id, held in routed.held.items():
            job.taxa[taxon_id].held = held
        for taxon_id, complete_up_to in routed.drops.items():
            walk.drop(taxon_id, complete_up_to)
        return routed


def _size_walk(query: Query, job: Job) -> QueryWalk:
    """The walk of one size over a query: its taxa still to list, from their own cursors
    (the query starts at the lowest cursor of any size)."""
    to_list = job.to_list()
    taxa = tuple(taxon_id for taxon_id in query.taxon_ids if taxon_id in to_list)
    behind = tuple((taxon_id, to_list[taxon_id]) for taxon_id in taxa if to_list[taxon_id] > query.after_id)
    return QueryWalk(Query(taxa, query.after_id, behind))


def place(
    client: ApiClient, filters: Filters, observation_ids: Sequence[int], taxa: Sequence[int]
) -> dict[int, int]:
    """The taxon of ``taxa`` (those the page was asked for) under which the API found
    each observation whose lineage names none of them (its taxon was moved upstream and
    the observation not re-indexed yet, or the API left the ancestors out).

    Halves of the taxa are asked which of the observations they find, until one taxon
    is left: about log2(taxa) requests, only for a page holding such observations.
    """
    placed: dict[int, int] = {}
    to_place = [(list(observation_ids), list(taxa))]
    while to_place:
        ids, candidates = to_place.pop()
        if len(candidates) == 1:
            placed.update(dict.fromkeys(ids, candidates[0]))
            continue
        half = candidates[: len(candidates) // 2]
        query = {
            **filters.params(half),
            "id": ",".join(map(str, ids)),
            "per_page": OBSERVATIONS_PER_PAGE,
            "only_id": "true",
        }
        found = {o.get("id") for o in results_of(client.get("observations", query)) if isinstance(o, dict)}
        inside = [i for i in ids if i in found]
        outside = [i for i in ids if i not in found]
        if inside:
            to_place.append((inside, half))
        if outside:  # found by the query, so under the other half
            to_place.append((outside, candidates[len(half) :]))
    return placed


def _cursors(walk: QueryWalk, job: Job) -> list[Cursor]:
    return [Cursor(job.taxa[t].key, t, last_id) for t, last_id in walk.cursors.items()]


def _names(names: Sequence[str]) -> str:
    """The taxa of a query, for progress: "A", "A and B", "A and 7 other taxa"."""
    if len(names) <= 2:
        return " and ".join(names)
    return f"{names[0]} and {len(names) - 1} other taxa"
