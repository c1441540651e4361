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

# DuckDB's own. What it uses beyond it (allocator, Arrow hand-off) grows as it spills: with
# 512MB a plan of 1,000 taxa peaked at 497 MB on 1 M photo rows and 727 MB on 10 M (1.5x);
# with 256MB at 404 and 473 MB (1.17x), 21 s (benchmarks/results.md).
MEMORY_LIMIT = "256MB"
THREADS = 2
TEMP_FOLDER = "duckdb-tmp"


def connect(open_data_dir: Path, memory_limit: str = MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """An in-memory database whose spills go under ``open_data_dir``."""
    import duckdb  # only the open-data commands pay for it

    temp = open_data_dir / TEMP_FOLDER
    temp.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(
        config={
            "memory_limit": memory_limit,
            "temp_directory": str(temp),
            "threads": THREADS,
            "preserve_insertion_order": False,  # lets COPY and joins stream instead of buffer
        }
    )
