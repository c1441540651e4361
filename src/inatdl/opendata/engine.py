"""One DuckDB connection with bounded memory and a temporary folder of our choosing.

DuckDB spills what does not fit under its memory limit to the temporary folder, so a join
of 100-million-row tables runs in bounded memory; the folder lives in the open-data dir
(beside the data, not on a small /tmp).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

# DuckDB's own. What it used beyond it (allocator, Arrow hand-off) grew as it spilled: with
# 512MB a plan of 1,000 taxa peaked at 497 MB on 1 M photo rows and 727 MB on 10 M (1.5x);
# with 256MB at 404 and 473 MB (1.17x), 21 s; with the plan file sorted by COPY instead of
# handed over as Arrow, 327 and 353 MB (1.08x) (benchmarks/results.md).
MEMORY_LIMIT = "256MB"
THREADS = 2
TEMP_FOLDER = "duckdb-tmp"


def temp_folder(open_data_dir: Path) -> Path:
    """Where the engine spills, and where a query's own scratch files go: beside the data."""
    temp = open_data_dir / TEMP_FOLDER
    temp.mkdir(parents=True, exist_ok=True)
    return temp


def connect(open_data_dir: Path, memory_limit: str = MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """An in-memory database whose spills go under ``open_data_dir``."""
    import duckdb  # only the open-data commands pay for it

    temp = temp_folder(open_data_dir)
    return duckdb.connect(
        config={
            "memory_limit": memory_limit,
            "temp_directory": str(temp),
            "threads": THREADS,
            "preserve_insertion_order": False,  # lets COPY and joins stream instead of buffer
        }
    )


def sql_literal(text: str) -> str:
    """A SQL string literal of ``text`` (a path that may hold quotes): DuckDB before 1.4 takes
    no parameter where COPY names its target."""
    return "'" + text.replace("'", "''") + "'"
