"""`taxa resolve`: species names to iNaturalist taxon ids, and taxa.csv."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inatdl.client import JSON, ApiClient
from inatdl.constants import TAXA_FILE, TAXA_IDS_PER_REQUEST, TAXA_PER_PAGE
from inatdl.errors import ApiError, NoTaxaError
from inatdl.files import atomic_write_text
from inatdl.jsonvalues import as_dict, as_int, as_list, as_text, results_of
from inatdl.naming import normalise_name

log = logging.getLogger("inatdl")

TAXA_COLUMNS = ("input_name", "taxon_id", "name", "rank", "match", "observations_count")
EXACT, SYNONYM, AMBIGUOUS, NOT_FOUND = "exact", "synonym", "ambiguous", "not_found"
ERROR = "error"  # the API could not be asked (no network, errors past the retries): ask again
OBSERVED = "observed"  # written by `taxa observed`: a taxon, not the answer for a name
# how iNaturalist files scientific names: the locale "sci" in its search index, the lexicon
# in its database
SCIENTIFIC_LEXICONS = ("scientific-names", "Scientific Names")


@dataclass
class TaxonRow:
    """One row of taxa.csv: an input name and what it resolved to."""

    input_name: str
    taxon_id: int | None = None
    name: str = ""
    rank: str = ""
    match: str = NOT_FOUND
    observations_count: int | None = None
    note: str = field(default="", compare=False)  # shown in the summary, not saved
    common_name_of: str = field(default="", compare=False)  # the taxon a common name given names

    @property
    def resolved(self) -> bool:
        return self.taxon_id is not None


@dataclass
class Choice:
    """What the search results say about one name, before any synonym is followed."""

    match: str
    taxon: JSON | None = None
    others: list[JSON] = field(default_factory=list)
    follow_ids: list[int] = field(default_factory=list)


@dataclass
class Resolution:
    """The rows of taxa.csv as written, and why some names could not be asked (if any)."""

    rows: list[TaxonRow]
    problem: str = ""  # the API's failure that left the rows of match ERROR unasked

    def raise_for_unasked(self) -> None:
        """ApiError when some names could not be asked: the run did not do all it was asked."""
        if self.problem:
            asked = sum(row.match != ERROR for row in self.rows)
            raise ApiError(
                f"{self.problem} ({asked} of {len(self.rows)} names were resolved and saved; "
                "the same command resolves the rest)"
            )


def _observations(taxon: JSON) -> int:
    return as_int(taxon.get("observations_count")) or 0


def is_taxon(value: Any) -> bool:
    """A search result that can be used: a dict with an int id and a name."""
    return (
        isinstance(value, dict)
        and as_int(value.get("id")) is not None
        and as_text(value.get("name")) is not None
    )


def choose_taxon(name: str, results: Iterable[JSON]) -> Choice:
    """Pick the taxon whose scientific name is exactly ``name``, never the first result.

    Search results come in relevance order and match common names and prefixes, so a
    genus, a variety or a common-name match may come first. Active exact matches win
    (the most observed when there are several); an inactive exact match is followed to
    its current taxon.
    """
    key = normalise_name(name)
    return _choose([t for t in results if is_taxon(t) and normalise_name(t["name"]) == key], EXACT)


def _choose(bearers: Sequence[JSON], match: str) -> Choice:
    """The taxon among those bearing the name: the most observed active one, else the
    current taxa of the inactive ones, to follow."""
    active = sorted((t for t in bearers if t.get("is_active", True)), key=_observations, reverse=True)
    if active:
        return Choice(match if len(active) == 1 else AMBIGUOUS, active[0], active[1:])
    follow: list[int] = []
    for taxon in bearers:
        for taxon_id in as_list(taxon.get("current_synonymous_taxon_ids")):
            if as_int(taxon_id) is not None and taxon_id not in follow:
                follow.append(taxon_id)
    return Choice(SYNONYM if follow else NOT_FOUND, follow_ids=follow)


def matched_by_another_name(name: str, results: Iterable[JSON]) -> list[JSON]:
    """The results that iNaturalist matched through another of their names that is exactly
    ``name`` (their ``matched_term``): a scientific name such as a nominate trinomial
    (``Pseudopolybia vespiceps vespiceps`` for ``Pseudopolybia vespiceps``), or a common name."""
    key = normalise_name(name)
    return [
        t
        for t in results
        if is_taxon(t)
        and normalise_name(t["name"]) != key
        and normalise_name(as_text(t.get("matched_term")) or "") == key
    ][:TAXA_IDS_PER_REQUEST]


def name_kinds(name: str, taxon: JSON) -> set[str]:
    """How ``taxon`` bears ``name``, from its ``names`` (asked with ``all_names``): "sci" for
    a scientific name, "common" for a name in a language; empty when it is not listed."""
    key = normalise_name(name)
    kinds: set[str] = set()
    for entry in as_list(taxon.get("names")):
        entry = as_dict(entry)
        if normalise_name(as_text(entry.get("name")) or "") == key:
            scientific = entry.get("locale") == "sci" or entry.get("lexicon") in SCIENTIFIC_LEXICONS
            kinds.add("sci" if scientific else "common")
    return kinds


def _by_another_name(client: ApiClient, input_name: str, matched: Sequence[JSON]) -> TaxonRow | Choice:
    """What a name that iNaturalist matched only through other names of taxa stands for:
    a Choice to follow when it is another scientific name of them (match ``synonym``); a
    row not found, naming the taxon, when it is a common name (names are matched on the
    scientific name only: a common name means different taxa in different places)."""
    key = normalise_name(input_name)
    common = [t for t in matched if normalise_name(as_text(t.get("preferred_common_name")) or "") == key]
    unknown = [t for t in matched if t not in common]  # their names are asked: one request
    named: list[JSON] = []
    if unknown:
        ids = ",".join(str(t["id"]) for t in unknown)
        named = [t for t in results_of(client.get(f"taxa/{ids}", {"all_names": "true"})) if is_taxon(t)]
    scientific = [t for t in named if "sci" in name_kinds(input_name, t)]
    if scientific:
        return _choose(scientific, SYNONYM)
    common += [t for t in named if "common" in name_kinds(input_name, t)]
    common.sort(key=_observations)
    if common:
        return TaxonRow(input_name, common_name_of=common[-1]["name"])
    return TaxonRow(input_name)


def resolve_name(client: ApiClient, input_name: str) -> TaxonRow:
    """Ask the API about one name and say what it resolves to."""
    params: dict[str, Any] = {
        "q": " ".join(input_name.split()),
        "is_active": "any",
        "per_page": TAXA_PER_PAGE,
    }
    found = results_of(client.get("taxa", params))
    choice = choose_taxon(input_name, found)
    note = ""
    matched = matched_by_another_name(input_name, found) if choice.match == NOT_FOUND else []
    if matched:
        by_another_name = _by_another_name(client, input_name, matched)
        if isinstance(by_another_name, TaxonRow):
            return by_another_name
        choice = by_another_name
        if choice.taxon is not None:
            note = f"another name of {choice.taxon['name']}"
    if choice.follow_ids:
        ids = ",".join(str(i) for i in choice.follow_ids)
        answer = results_of(client.get(f"taxa/{ids}"))
        current = [t for t in answer if is_taxon(t) and t.get("is_active", True)]
        current.sort(key=_observations, reverse=True)
        if not current:
            return TaxonRow(input_name, note="an inactive name whose current taxon is unknown")
        choice.taxon, choice.others = current[0], current[1:]
        note = f"inactive name, now {current[0].get('name')}"
    if choice.taxon is None:
        return TaxonRow(input_name)
    if choice.others:
        others = ", ".join(f"{t.get('id')} ({_observations(t)} obs.)" for t in choice.others)
        note = f"{note}; also " if note else "also "
        note += f"taxon {others}"
    taxon = choice.taxon
    return TaxonRow(
        input_name=input_name,
        taxon_id=int(taxon["id"]),
        name=taxon["name"],
        rank=as_text(taxon.get("rank")) or "",
        match=choice.match,
        observations_count=_observations(taxon),
        note=note,
    )


def read_taxa_csv(path: Path) -> list[TaxonRow]:
    """The rows of an existing taxa.csv; NoTaxaError saying why when it cannot be read."""
    problem = "it is not a taxa.csv written by inatdl"
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            records = list(csv.DictReader(handle))
        rows = [
            TaxonRow(
                input_name=record["input_name"],
                taxon_id=int(record["taxon_id"]) if record["taxon_id"] else None,
                name=record["name"] or "",
                rank=record["rank"] or "",
                match=record["match"] or NOT_FOUND,
                observations_count=int(record["observations_count"])
                if record["observations_count"]
                else None,
            )
            for record in records
        ]
    except OSError as exc:
        problem = exc.strerror or str(exc)
    except UnicodeDecodeError:
        problem = "it is not UTF-8 text"
    except (csv.Error, KeyError, ValueError, TypeError):
        pass
    else:
        return rows
    raise NoTaxaError(
        f"cannot read {path} ({problem}); run 'inatdl taxa resolve SPECIES_CSV' again to rewrite it"
    )


def write_taxa_csv(path: Path, rows: Sequence[TaxonRow]) -> None:
    """Write taxa.csv atomically, with the columns of the contract."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TAXA_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row.input_name,
                "" if row.taxon_id is None else row.taxon_id,
                row.name,
                row.rank,
                row.match,
                "" if row.observations_count is None else row.observations_count,
            ]
        )
    atomic_write_text(path, buffer.getvalue())


def resolve_species(
    client: ApiClient,
    names: Sequence[str],
    data_dir: Path,
    refresh: bool = False,
    on_name: Callable[[TaxonRow], None] | None = None,
) -> Resolution:
    """Resolve every name, reusing the answers already in taxa.csv unless ``refresh``.

    Only resolved names are reused (not the taxa `taxa observed` listed): names not found
    before, and those the API could not be asked about, are asked again. When the API
    fails (after its retries), no further name is asked: a name left keeps what taxa.csv
    knew of it (even under ``refresh``: an answer is never lost for want of a network),
    else gets the match ``error``, so that `photos fetch` can say why it has no taxon and
    the next run asks for it. A Ctrl-C does the same, then stops the command.
    """
    path = data_dir / TAXA_FILE
    previous = _resolved_before(path)
    known = {} if refresh else previous
    rows: list[TaxonRow] = []
    problem = ""
    interrupted = False  # Ctrl-C: the names answered so far are saved, as when the API fails
    for name in names:
        key = normalise_name(name)
        row = _reused(name, known[key]) if key in known else None
        if row is None and not problem and not interrupted:
            try:
                row = resolve_name(client, name)
                log.debug("%s: %s %s", name, row.match, row.taxon_id)
            except ApiError as exc:
                problem = str(exc)
            except KeyboardInterrupt:
                interrupted = True
        if row is None:  # not asked
            row = _reused(name, previous[key]) if key in previous else TaxonRow(name, match=ERROR)
        rows.append(row)
        if on_name is not None:
            on_name(row)
    write_taxa_csv(path, rows)
    if interrupted:
        raise KeyboardInterrupt
    return Resolution(rows, problem)


def _resolved_before(path: Path) -> dict[str, TaxonRow]:
    """The names taxa.csv holds resolved (not the taxa `taxa observed` listed), by key."""
    if not path.exists():
        return {}
    try:
        rows = read_taxa_csv(path)
    except NoTaxaError as exc:
        log.warning("%s; resolving every name again", exc)
        return {}
    return {normalise_name(row.input_name): row for row in rows if row.resolved and row.match != OBSERVED}


def _reused(name: str, row: TaxonRow) -> TaxonRow:
    """An answer of taxa.csv for ``name`` as written this time."""
    return TaxonRow(
        name, row.taxon_id, row.name, row.rank, row.match, row.observations_count, note="from taxa.csv"
    )


def load_resolved_taxa(data_dir: Path) -> list[TaxonRow]:
    """The distinct resolved taxa of taxa.csv, for photos fetch.

    Names that iNaturalist could not be asked about are not the names' fault: the message
    says so, and says to resolve them again, rather than to check them.
    """
    path = data_dir / TAXA_FILE
    if not path.exists():
        raise NoTaxaError(f"no taxa.csv in {data_dir}; run 'inatdl taxa resolve SPECIES_CSV' first")
    rows = read_taxa_csv(path)
    unasked = sum(row.match == ERROR for row in rows)
    seen: dict[int, TaxonRow] = {}
    for row in rows:
        if row.taxon_id is not None and row.taxon_id not in seen:
            seen[row.taxon_id] = row
    if not seen and unasked:
        raise NoTaxaError(
            f"{path} has no resolved taxon: iNaturalist could not be asked about its names "
            "(no network, or the API failing); run 'inatdl taxa resolve SPECIES_CSV' again"
        )
    if not seen:
        raise NoTaxaError(
            f"{path} has no resolved taxon; check the names and run 'inatdl taxa resolve SPECIES_CSV' again"
        )
    if unasked:
        log.warning(
            "%d of the names in %s are not resolved yet (iNaturalist could not be asked); "
            "run 'inatdl taxa resolve SPECIES_CSV' again to add their photos",
            unasked,
            path,
        )
    return list(seen.values())
