"""`taxa resolve`: species names from a CSV to iNaturalist taxon ids, and taxa.csv."""

from __future__ import annotations

import codecs
import csv
import io
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inatdl.client import JSON, ApiClient
from inatdl.constants import TAXA_FILE, TAXA_PER_PAGE
from inatdl.errors import ApiError, NoTaxaError, SpeciesFileError
from inatdl.files import atomic_write_text
from inatdl.jsonvalues import as_int, as_list, as_text, results_of
from inatdl.naming import normalise_name

log = logging.getLogger("inatdl")

TAXA_COLUMNS = ("input_name", "taxon_id", "name", "rank", "match", "observations_count")
EXACT, SYNONYM, AMBIGUOUS, NOT_FOUND = "exact", "synonym", "ambiguous", "not_found"
ERROR = "error"  # the API could not be asked (no network, errors past the retries): ask again
OBSERVED = "observed"  # written by `taxa observed`: a taxon, not the answer for a name


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


DEFAULT_COLUMN = "Species"
DELIMITERS = (",", ";", "\t")  # comma first: it wins when the header is one cell


def read_species_csv(path: Path, column: str | None = None) -> list[str]:
    """The distinct names of the file, as first written, in file order.

    The file is a table delimited by commas, semicolons or tabs (as spreadsheets write it in
    various locales) whose header holds ``column`` (``Species`` by default), or, when no
    column was asked for and the first line is one cell that is not ``Species``, a plain
    list of one name a line.
    """
    wanted = column or DEFAULT_COLUMN
    text = _species_text(path, wanted)
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    delimiter, header = _find_header(first, wanted)
    if delimiter is None and column is None and len(header) == 1:
        return _distinct(line.strip().rstrip("".join(DELIMITERS)).strip() for line in lines)
    rows = _table_rows(path, text, delimiter) if delimiter is not None else [header]
    header = [cell.strip() for cell in rows[0]]
    index = _column_index(header, wanted)
    if index is None:
        found = ", ".join(repr(h) for h in header if h) or "none"
        raise SpeciesFileError(
            f"{path} has no column {wanted!r}; columns found: {found}; choose one with --column"
        )
    names = _distinct(row[index] if index < len(row) else "" for row in rows[1:])
    if not names:
        raise SpeciesFileError(f"{path} has a header but no names in column {header[index]!r}")
    return names


def _table_rows(path: Path, text: str, delimiter: str) -> list[list[str]]:
    """The rows of a delimited file that hold anything, the header first."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise SpeciesFileError(f"{path} is not a readable CSV: {exc}") from None
    return [row for row in rows if any(cell.strip() for cell in row)]


def _species_text(path: Path, column: str) -> str:
    """The file's text: UTF-8 (a BOM allowed) or UTF-16 with its BOM, as Excel writes it."""
    if not path.exists():
        raise SpeciesFileError(f"species file {path} not found")
    if path.is_dir():
        raise SpeciesFileError(f"{path} is a folder; give the species CSV file")
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            raw = raw.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            raise SpeciesFileError(f"{path} is not readable UTF-16 text; save it as UTF-8") from None
    if not raw.lstrip(codecs.BOM_UTF8).strip():
        raise SpeciesFileError(
            f"{path} is empty; it needs a header row with a {column!r} column and one name a row, "
            "or one name a line"
        )
    if b"\x00" in raw:
        raise SpeciesFileError(f"{path} is not a CSV file (it holds binary data)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpeciesFileError(
            f"{path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
            "save it as UTF-8 (in Excel: 'CSV UTF-8') and try again"
        ) from None


def _find_header(line: str, column: str) -> tuple[str | None, list[str]]:
    """The first delimiter whose cells of ``line`` hold ``column``, with those cells; when
    none does, None and the most cells any delimiter makes of the line (to name them)."""
    widest = [line.strip()]
    for delimiter in DELIMITERS:
        try:
            cells = [cell.strip() for cell in next(csv.reader([line], delimiter=delimiter), [])]
        except csv.Error:
            continue
        if _column_index(cells, column) is not None:
            return delimiter, cells
        while len(cells) > 1 and not cells[-1]:
            cells.pop()  # a trailing delimiter makes no column
        if len(cells) > len(widest):
            widest = cells
    return None, widest


def _distinct(cells: Iterable[str]) -> list[str]:
    """Each name once (compared ignoring case and runs of spaces), as first written."""
    names: dict[str, str] = {}
    for cell in cells:
        key = normalise_name(cell)
        if key and key not in names:
            names[key] = cell  # as written: taxa.csv keeps the user's spelling
    return list(names.values())


def _column_index(header: Sequence[str], column: str) -> int | None:
    """The column named exactly, else the one whose name differs only in case."""
    if column in header:
        return header.index(column)
    folded = [h.casefold() for h in header]
    return folded.index(column.casefold()) if column.casefold() in folded else None


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
    exact = [t for t in results if is_taxon(t) and normalise_name(t["name"]) == key]
    active = sorted((t for t in exact if t.get("is_active", True)), key=_observations, reverse=True)
    if active:
        return Choice(EXACT if len(active) == 1 else AMBIGUOUS, active[0], active[1:])
    follow: list[int] = []
    for taxon in exact:
        for taxon_id in as_list(taxon.get("current_synonymous_taxon_ids")):
            if as_int(taxon_id) is not None and taxon_id not in follow:
                follow.append(taxon_id)
    return Choice(SYNONYM if follow else NOT_FOUND, follow_ids=follow)


def resolve_name(client: ApiClient, input_name: str) -> TaxonRow:
    """Ask the API about one name and say what it resolves to."""
    params: dict[str, Any] = {
        "q": " ".join(input_name.split()),
        "is_active": "any",
        "per_page": TAXA_PER_PAGE,
    }
    choice = choose_taxon(input_name, results_of(client.get("taxa", params)))
    note = ""
    if choice.follow_ids:
        ids = ",".join(str(i) for i in choice.follow_ids)
        found = results_of(client.get(f"taxa/{ids}"))
        current = [t for t in found if is_taxon(t) and t.get("is_active", True)]
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
    fails (after its retries), no further name is asked: the names left get the match
    ``error`` in taxa.csv, so that `photos fetch` can say why they have no taxon and the
    next run asks for them.
    """
    path = data_dir / TAXA_FILE
    known: dict[str, TaxonRow] = {}
    if not refresh and path.exists():
        try:
            known = {
                normalise_name(row.input_name): row
                for row in read_taxa_csv(path)
                if row.resolved and row.match != OBSERVED
            }
        except NoTaxaError as exc:
            log.warning("%s; resolving every name again", exc)
    rows: list[TaxonRow] = []
    problem = ""
    for name in names:
        row = known.get(normalise_name(name))
        if row is not None:
            row = TaxonRow(
                name,
                row.taxon_id,
                row.name,
                row.rank,
                row.match,
                row.observations_count,
                note="from taxa.csv",
            )
        elif problem:
            row = TaxonRow(name, match=ERROR)
        else:
            try:
                row = resolve_name(client, name)
            except ApiError as exc:
                problem = str(exc)
                row = TaxonRow(name, match=ERROR)
            log.debug("%s: %s %s", name, row.match, row.taxon_id)
        rows.append(row)
        if on_name is not None:
            on_name(row)
    write_taxa_csv(path, rows)
    return Resolution(rows, problem)


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
