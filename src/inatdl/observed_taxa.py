"""`taxa observed`: the taxa observed under a filter (a place, a higher taxon), as taxa.csv.

The list comes from ``/observations/species_counts``, which counts *leaf* taxa: each
observation goes to its taxon (to the parent when its taxon ranks below species), and a
counted taxon that is an ancestor of another counted one is left out. So a leaf may still
rank below species (a variety of a subspecies); for ``--rank species`` such a leaf is
folded into its species, whose name is asked by id, a few ids a request. (Its species'
own observations, hidden by that leaf, are then not in the count; `photos fetch` still
gets them, as it asks for the species with its descendants.)
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inatdl.client import JSON, ApiClient
from inatdl.constants import QUALITY_GRADES, SPECIES_COUNTS_PER_PAGE, TAXA_FILE, TAXA_IDS_PER_REQUEST
from inatdl.errors import NothingObservedError, UnknownTaxonError
from inatdl.jsonvalues import as_int, as_number, as_text, results_of
from inatdl.taxa import OBSERVED, TaxonRow, is_taxon, resolve_name, write_taxa_csv

log = logging.getLogger("inatdl")

RANK_SPECIES, RANK_ANY = "species", "any"
RANKS = (RANK_SPECIES, RANK_ANY)
SPECIES_LEVEL = 10
# rank_level by rank, for a taxon whose JSON lacks it (the API's own levels)
_LEVELS = {"species": 10, "hybrid": 10, "subspecies": 5, "variety": 5, "form": 5, "infrahybrid": 5}


@dataclass(frozen=True)
class ObservedQuery:
    """What `taxa observed` lists: taxa of ``rank`` in a place, maybe under a higher taxon."""

    place_id: int
    within: str | None = None
    rank: str = RANK_SPECIES
    quality: tuple[str, ...] = QUALITY_GRADES


@dataclass(frozen=True)
class Leaf:
    """One result of species_counts: a taxon and how many observations it stands for."""

    taxon: JSON
    count: int


@dataclass
class ObservedReport:
    """The rows written, and the higher taxon they were listed under (if any)."""

    rows: list[TaxonRow]
    within: TaxonRow | None
    path: Path


def list_observed(
    client: ApiClient,
    query: ObservedQuery,
    data_dir: Path,
    on_page: Callable[[int, int], None] | None = None,
) -> ObservedReport:
    """List the taxa observed with photos under ``query`` and write them as taxa.csv.

    taxa.csv is replaced only when there is something to write: an empty list is an error
    and leaves the old file as it was. ``on_page(page, pages)`` follows a long listing.
    """
    within = resolve_within(client, query.within) if query.within else None
    params = species_counts_params(query, None if within is None else within.taxon_id)
    leaves = _once_each(leaf_pages(client, params, on_page))
    if query.rank == RANK_SPECIES:
        rows = species_rows(leaves, ancestors_of_leaves(client, leaves))
    else:
        rows = leaf_rows(leaves)
    if not rows:
        raise NothingObservedError(_nothing_message(query, within))
    path = data_dir / TAXA_FILE
    write_taxa_csv(path, rows)
    return ObservedReport(rows, within, path)


def resolve_within(client: ApiClient, name: str) -> TaxonRow:
    """The higher taxon of ``--within``, matched exactly like a name of the species file."""
    row = resolve_name(client, name)
    if row.common_name_of:
        raise UnknownTaxonError(
            f"--within {name!r} is a common name of {row.common_name_of}; give the scientific name "
            f"(--within {shlex.quote(row.common_name_of)})"
        )
    if not row.resolved:
        raise UnknownTaxonError(
            f"--within {name!r}: iNaturalist has no taxon of that scientific name; "
            "check the spelling (for example Plantae, Actinopterygii, Lythrum)"
        )
    return row


def species_counts_params(query: ObservedQuery, within_id: int | None) -> dict[str, Any]:
    """The species_counts query (paging aside): observations with photos under the filter."""
    params: dict[str, Any] = {"place_id": query.place_id, "photos": "true"}
    if within_id is not None:
        params["taxon_id"] = within_id
    if set(query.quality) != set(QUALITY_GRADES):
        params["quality_grade"] = ",".join(query.quality)
    if query.rank == RANK_SPECIES:
        params["hrank"] = "species"  # observations identified only to a genus or above say no species
    return params


def leaf_pages(
    client: ApiClient, params: Mapping[str, Any], on_page: Callable[[int, int], None] | None = None
) -> Iterator[list[Leaf]]:
    """Pages of species_counts until the ``total_results`` leaves the API counts are paged.

    This endpoint pages by ``page`` (it has no id cursor). Its pages are as long as the
    answer's ``per_page`` says, which may be less than asked (a server with a smaller
    maximum); and a short page may still not be the last (a leaf whose taxon cannot be
    loaded is left out of its page). One line warns when the leaves listed are not as
    many as the API counted.
    """
    page, listed_in_all = 1, 0
    while True:
        data = client.get(
            "observations/species_counts", {**params, "per_page": SPECIES_COUNTS_PER_PAGE, "page": page}
        )
        listed = results_of(data)
        listed_in_all += len(listed)
        yield [leaf for leaf in map(_leaf, listed) if leaf is not None]
        total = as_int(data.get("total_results"))
        page_size = _page_size(data, len(listed))
        log.debug("species_counts page %d: %d leaves of %s, %d a page", page, len(listed), total, page_size)
        if on_page is not None and total is not None and page_size:
            on_page(page, -(-total // page_size))
        if not listed or total is None or page * page_size >= total:
            break
        page += 1
    if total is not None and listed_in_all != total:
        log.warning(
            "the API counted %d taxa under this filter but listed %d; taxa.csv holds those listed",
            total,
            listed_in_all,
        )


def _page_size(data: JSON, listed: int) -> int:
    """How many leaves a page of this answer holds: its ``per_page`` (at most what was asked),
    else as many as it listed (never more than it holds, so no page is skipped)."""
    size = as_int(data.get("per_page"))
    if size is None or size <= 0:
        return listed
    return min(size, SPECIES_COUNTS_PER_PAGE)


def ancestors_of_leaves(client: ApiClient, leaves: Sequence[Leaf]) -> dict[int, JSON]:
    """The taxa between each leaf ranked below species and its species, asked by id.

    Each round asks for the parents not known yet, up to 30 ids a request (the API's most);
    a second round is needed only when a parent itself ranks below species.
    """
    known: dict[int, JSON] = {}
    while True:
        wanted: list[int] = []
        for leaf in leaves:
            needed = species_of(leaf.taxon, known)[1]
            if needed is not None and needed not in wanted:
                wanted.append(needed)
        if not wanted:
            return known
        for start in range(0, len(wanted), TAXA_IDS_PER_REQUEST):
            batch = wanted[start : start + TAXA_IDS_PER_REQUEST]
            data = client.get(f"taxa/{','.join(map(str, batch))}")
            for taxon in results_of(data):
                if is_taxon(taxon):
                    known[taxon["id"]] = taxon
            for taxon_id in batch:
                known.setdefault(taxon_id, {})  # not given: never asked again


def species_of(taxon: JSON, known: Mapping[int, JSON]) -> tuple[int | None, int | None]:
    """(the species ``taxon`` belongs to, or None; the ancestor id to ask first, or None).

    A taxon of species level is its own species; one above has none; one below has its
    nearest ancestor of species level, found by walking up ``ancestor_ids`` through
    ``known`` taxa.
    """
    level = rank_level(taxon)
    if level == SPECIES_LEVEL:
        return taxon["id"], None
    if level is None or level > SPECIES_LEVEL:
        return None, None
    ancestor_ids = taxon.get("ancestor_ids")
    if not isinstance(ancestor_ids, list):
        ancestor_ids = [taxon.get("parent_id"), taxon["id"]]
    for ancestor_id in reversed(ancestor_ids[:-1]):
        if as_int(ancestor_id) is None:
            return None, None
        ancestor = known.get(ancestor_id)
        if ancestor is None:
            return None, ancestor_id
        level = rank_level(ancestor)
        if level == SPECIES_LEVEL:
            return ancestor_id, None
        if level is None or level > SPECIES_LEVEL:
            return None, None
    return None, None


def species_rows(leaves: Sequence[Leaf], known: Mapping[int, JSON]) -> list[TaxonRow]:
    """One row per species, counting the observations of every leaf that belongs to it.

    A leaf below species whose species the API did not give stays as it is (its photos are
    still what was asked for); a leaf above species is left out.
    """
    pairs: list[tuple[JSON, int]] = []
    for leaf in leaves:
        species_id = species_of(leaf.taxon, known)[0]
        level = rank_level(leaf.taxon)
        if species_id is not None:
            pairs.append((leaf.taxon if species_id == leaf.taxon["id"] else known[species_id], leaf.count))
        elif level is not None and level < SPECIES_LEVEL:
            log.warning("the species of %s is not known to the API; listed as it is", leaf.taxon["name"])
            pairs.append((leaf.taxon, leaf.count))
        else:
            log.debug("left out %s (%s): no species", leaf.taxon["name"], leaf.taxon.get("rank"))
    return _rows(pairs)


def leaf_rows(leaves: Sequence[Leaf]) -> list[TaxonRow]:
    """One row per leaf, as the API lists them."""
    return _rows((leaf.taxon, leaf.count) for leaf in leaves)


def rank_level(taxon: JSON) -> float | None:
    """The taxon's rank level (species 10, genus 20, variety 5), from its JSON."""
    level = as_number(taxon.get("rank_level"))
    if level is not None:
        return level
    return _LEVELS.get(as_text(taxon.get("rank")) or "")


def _rows(pairs: Iterable[tuple[JSON, int]]) -> list[TaxonRow]:
    """One row per taxon with its counts summed, the most observed first."""
    taxa: dict[int, JSON] = {}
    counts: dict[int, int] = {}
    for taxon, count in pairs:
        taxa.setdefault(taxon["id"], taxon)
        counts[taxon["id"]] = counts.get(taxon["id"], 0) + count
    rows = [
        TaxonRow(
            input_name=taxon["name"],
            taxon_id=taxon_id,
            name=taxon["name"],
            rank=as_text(taxon.get("rank")) or "",
            match=OBSERVED,
            observations_count=counts[taxon_id],
        )
        for taxon_id, taxon in taxa.items()
    ]
    rows.sort(key=lambda row: (-(row.observations_count or 0), row.name.casefold(), row.taxon_id or 0))
    return rows


def _once_each(pages: Iterable[list[Leaf]]) -> list[Leaf]:
    """Each leaf once (as first seen): pages by number shift when observations come in."""
    leaves: dict[int, Leaf] = {}
    for page in pages:
        for leaf in page:
            leaves.setdefault(leaf.taxon["id"], leaf)
    return list(leaves.values())


def _leaf(result: Any) -> Leaf | None:
    count = as_int(result.get("count")) if isinstance(result, dict) else None
    if count is None or not is_taxon(result.get("taxon")):
        return None
    return Leaf(result["taxon"], count)


def _nothing_message(query: ObservedQuery, within: TaxonRow | None) -> str:
    what = "no species" if query.rank == RANK_SPECIES else "nothing"
    under = f" under {within.name}" if within is not None else ""
    quality = f" of quality {','.join(query.quality)}" if set(query.quality) != set(QUALITY_GRADES) else ""
    return (
        f"{what}{under} was observed with photos{quality} in place {query.place_id}; "
        f"check the place id (https://www.inaturalist.org/places/{query.place_id}) and the filters"
    )
