"""The dump's four tables: the columns inatdl reads from each, and their types.

Later dumps add columns (``anomaly_score`` in 2024-11): a column not named here is read as
text and left out of the copy; a column named here and missing from a table's header is an
error naming it, never a silently empty column.
"""

from __future__ import annotations

TABLES = ("taxa", "observations", "photos", "observers")

#: Column → DuckDB type, for the columns the copy keeps (the order of the Parquet files).
COLUMNS: dict[str, dict[str, str]] = {
    "taxa": {
        "taxon_id": "BIGINT",
        "ancestry": "VARCHAR",
        "rank_level": "DOUBLE",
        "rank": "VARCHAR",
        "name": "VARCHAR",
        "active": "BOOLEAN",
    },
    "observations": {
        "observation_uuid": "VARCHAR",
        "observer_id": "BIGINT",
        "latitude": "DOUBLE",
        "longitude": "DOUBLE",
        "positional_accuracy": "DOUBLE",
        "taxon_id": "BIGINT",
        "quality_grade": "VARCHAR",
        "observed_on": "DATE",
    },
    "photos": {
        "photo_id": "BIGINT",
        "observation_uuid": "VARCHAR",
        "observer_id": "BIGINT",
        "extension": "VARCHAR",
        "license": "VARCHAR",
        "position": "INTEGER",
    },
    "observers": {"observer_id": "BIGINT", "login": "VARCHAR", "name": "VARCHAR"},
}


def file_name(table: str) -> str:
    """The table's file at the open data's base URL and in the open-data dir."""
    return f"{table}.csv.gz"
