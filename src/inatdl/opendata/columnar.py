"""The columnar copy: each downloaded table read once (gzip'd TSV, no quoting, declared
types) and written as Parquet, in a new folder that replaces the previous copy whole.

``current.json`` names the folder in use; it is rewritten atomically only after every table
of the new copy is written, so a failure (full disk, a corrupt table, Ctrl-C) at any moment
leaves the previous copy in use and nothing half-written is ever read.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import json
import re
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

from inatdl.errors import OpenDataError
from inatdl.files import atomic_write_text, disk_error
from inatdl.opendata.engine import connect, sql_literal
from inatdl.opendata.tables import COLUMNS, TABLES, file_name

CURRENT_FILE = "current.json"
COPY_PREFIX = "columnar-"
NEW_SUFFIX = ".new"

# Reads one table with quoting off (names hold literal " and '), every column of the header
# typed (ours as declared, later additions as text), and writes only ours as Parquet.
COPY_TABLE_SQL = """
COPY (
    SELECT {kept}
    FROM read_csv($source, delim = '\t', header = true, quote = '', escape = '',
                  compression = 'gzip', columns = $columns, null_padding = false)
) TO {target} (FORMAT parquet, COMPRESSION zstd)
"""  # the target is a quoted literal (engine.sql_literal)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Copy:
    """The columnar copy in use: its folder, the dump's date, and the tables' validators."""

    folder: Path
    dump_date: str
    sources: dict[str, str]

    def parquet(self, table: str) -> Path:
        return self.folder / f"{table}.parquet"


def read_header(path: Path, table: str) -> list[str]:
    """The table's column names from its first line; OpenDataError when the file is not gzip'd
    text or is cut before the header ends."""
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            first = handle.readline()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise _corrupt(path, table, exc) from None
    if not first.endswith("\n"):
        raise _corrupt(path, table, "no complete header line")
    return first.rstrip("\r\n").split("\t")


def column_types(table: str, header: list[str]) -> dict[str, str]:
    """read_csv's ``columns``: every header column in order, ours typed, others as text;
    OpenDataError naming the required columns the header lacks (an unknown layout)."""
    wanted = COLUMNS[table]
    missing = [name for name in wanted if name not in header]
    if missing:
        found = ", ".join(header[:12]) or "none"
        raise OpenDataError(
            f"the open data's {table} table has no column {', '.join(missing)} (columns found: {found}); "
            "its layout is not one inatdl knows: check --open-data-url, or update inatdl"
        )
    if len(set(header)) != len(header):
        raise OpenDataError(f"the open data's {table} table names a column twice in its header")
    return {name: wanted.get(name, "VARCHAR") for name in header}


def copy_table(source: Path, table: str, target: Path, open_data_dir: Path) -> None:
    """Write ``table``'s kept columns from the gzip'd TSV ``source`` as Parquet ``target``."""
    import duckdb

    columns = column_types(table, read_header(source, table))
    kept = ", ".join(_quoted(name) for name in COLUMNS[table])
    con = connect(open_data_dir)
    try:
        con.execute(
            COPY_TABLE_SQL.format(kept=kept, target=sql_literal(str(target))),
            {"source": str(source), "columns": columns},
        )
    except duckdb.IOException as exc:
        if "space left" in str(exc).lower():
            full = OSError(errno.ENOSPC, "No space left on device")
            raise disk_error(full, target, "use --open-data-dir") from None
        raise _corrupt(source, table, exc) from None
    except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
        raise _corrupt(source, table, exc) from None
    finally:
        con.close()


def make_copy(open_data_dir: Path, notes: dict[str, str], dump_date: str) -> Copy:
    """A new columnar copy of every table, put in use only once whole; ``notes`` names each
    table's downloaded body (its ETag or date), ``dump_date`` the dump's date."""
    folder = open_data_dir / f"{COPY_PREFIX}{_slug(notes)}{NEW_SUFFIX}"
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.mkdir(parents=True)
        for table in TABLES:
            copy_table(open_data_dir / file_name(table), table, folder / f"{table}.parquet", open_data_dir)
        final = folder.with_name(folder.name.removesuffix(NEW_SUFFIX))
        shutil.rmtree(final, ignore_errors=True)  # an earlier copy of the same bodies, not in use
        folder.rename(final)
    except BaseException as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, OSError):
            raise disk_error(exc, folder, "use --open-data-dir") from exc
        raise
    previous = current_copy(open_data_dir)
    record = {"folder": final.name, "dump_date": dump_date, "sources": notes}
    atomic_write_text(open_data_dir / CURRENT_FILE, json.dumps(record, indent=1))
    if previous is not None and previous.folder != final:
        shutil.rmtree(previous.folder, ignore_errors=True)
    return Copy(final, dump_date, dict(notes))


def current_copy(open_data_dir: Path) -> Copy | None:
    """The copy in use, or None when there is none (never synced, or its record is unusable)."""
    try:
        record = json.loads((open_data_dir / CURRENT_FILE).read_text(encoding="utf-8"))
        folder = open_data_dir / str(record["folder"])
        copy = Copy(folder, str(record["dump_date"]), {str(k): str(v) for k, v in record["sources"].items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return copy if all(copy.parquet(t).exists() for t in TABLES) else None


def remove_leftovers(open_data_dir: Path) -> None:
    """Folders of copies that were cut short or replaced (a crash between the steps above)."""
    current = current_copy(open_data_dir)
    for folder in open_data_dir.glob(f"{COPY_PREFIX}*"):
        if folder.is_dir() and (current is None or folder != current.folder):
            shutil.rmtree(folder, ignore_errors=True)


def _slug(notes: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(notes, sort_keys=True).encode()).hexdigest()[:12]


def _quoted(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a column name: {name!r}")
    return f'"{name}"'


def _corrupt(path: Path, table: str, why: object) -> OpenDataError:
    with contextlib.suppress(OSError):
        path.unlink()  # the next sync downloads it again
    with contextlib.suppress(OSError):
        path.with_name(path.name + ".json").unlink()
    first = str(why).strip().splitlines()[0] if str(why).strip() else type(why).__name__
    return OpenDataError(
        f"the downloaded {table} table is unreadable ({first[:160]}); it was removed, so "
        "`inatdl opendata sync` downloads it again (the previous copy stays in use)"
    )


def require_copy(open_data_dir: Path) -> Copy:
    """The copy in use, or OpenDataError saying to run `inatdl opendata sync`."""
    copy = current_copy(open_data_dir)
    if copy is None:
        raise OpenDataError(
            f"no synced open data in {open_data_dir}; run `inatdl opendata sync` first "
            "(or point --open-data-dir at the folder it synced)"
        )
    return copy
