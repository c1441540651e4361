"""The species file of `taxa resolve`: the names a user lists, read as people write them."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from inatdl.errors import SpeciesFileError
from inatdl.naming import normalise_name

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
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    starts = 1  # the line the row being read starts on (a quoted cell may span lines)
    try:
        for row in reader:
            rows.append(row)
            starts = reader.line_num + 1
    except csv.Error as exc:
        raise SpeciesFileError(
            f'{path} is not a readable CSV: {exc} in the row from line {starts}; check its quotes (")'
        ) from None
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
        raise SpeciesFileError(
            f"{path} is not a CSV file (it holds binary data); save it as CSV (in Excel: 'CSV UTF-8')"
        )
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
