"""The state file's versions: the first release's tables and the steps from each version
to the next, so that a data dir of any earlier release is upgraded in place.

A new state file starts as version 1 and takes the same steps as an old one, so both end
the same; state.Store runs them, and the new version, in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator

APP_ID = "inatdl"
#: The state version this code writes; MIGRATIONS brings older state files up to it.
SCHEMA_VERSION = 3

#: The first release's tables (state version 1): a new state file starts as these, then
#: MIGRATIONS bring it up to SCHEMA_VERSION, as they do an old one. Never edit it.
SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE cursors (
    query TEXT PRIMARY KEY,
    taxon_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE photos (
    photo_id INTEGER NOT NULL,
    size TEXT NOT NULL,
    status TEXT NOT NULL,
    taxon_id INTEGER NOT NULL,
    taxon_name TEXT NOT NULL,
    observation_id INTEGER NOT NULL,
    observed_taxon_id INTEGER,
    observed_taxon_name TEXT,
    url TEXT NOT NULL,
    path TEXT NOT NULL,
    license_code TEXT NOT NULL,
    attribution TEXT,
    observer TEXT,
    quality_grade TEXT,
    latitude REAL,
    longitude REAL,
    observed_on TEXT,
    observation_url TEXT,
    query TEXT NOT NULL,
    bytes INTEGER,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    PRIMARY KEY (photo_id, size)
);
CREATE INDEX photos_by_taxon ON photos (taxon_id, size, status, observation_id);
CREATE TABLE ledger (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE INDEX ledger_by_time ON ledger (at);
"""

_PHOTOS_V1_COLUMNS = (
    "photo_id, size, status, taxon_id, taxon_name, observation_id, observed_taxon_id, "
    "observed_taxon_name, url, path, license_code, attribution, observer, quality_grade, "
    "latitude, longitude, observed_on, observation_url, query, bytes, error, attempts, updated_at"
)

#: The statements that bring a state file from the version before each key to that version,
#: run in order in the transaction that records the new version. Never edit a step that
#: shipped: add the next version's.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    # The observation's uuid and how precise and how public its coordinates are; and
    # observation_id may be empty (the open-data route has no integer id). SQLite cannot
    # drop a NOT NULL, so the photos table is rebuilt (its rows copied, the new columns
    # empty: what the state never knew), then its index made again.
    2: (
        """CREATE TABLE photos_v2 (
            photo_id INTEGER NOT NULL,
            size TEXT NOT NULL,
            status TEXT NOT NULL,
            taxon_id INTEGER NOT NULL,
            taxon_name TEXT NOT NULL,
            observation_id INTEGER,
            observed_taxon_id INTEGER,
            observed_taxon_name TEXT,
            url TEXT NOT NULL,
            path TEXT NOT NULL,
            license_code TEXT NOT NULL,
            attribution TEXT,
            observer TEXT,
            quality_grade TEXT,
            latitude REAL,
            longitude REAL,
            observed_on TEXT,
            observation_url TEXT,
            query TEXT NOT NULL,
            bytes INTEGER,
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            updated_at REAL NOT NULL,
            observation_uuid TEXT,
            positional_accuracy INTEGER,
            coordinates_obscured INTEGER,
            PRIMARY KEY (photo_id, size)
        )""",
        f"INSERT INTO photos_v2 ({_PHOTOS_V1_COLUMNS}) SELECT {_PHOTOS_V1_COLUMNS} FROM photos",
        "DROP TABLE photos",
        "ALTER TABLE photos_v2 RENAME TO photos",
        # photo_id last: the photos without an observation id are walked by it
        "CREATE INDEX photos_by_taxon ON photos (taxon_id, size, status, observation_id, photo_id)",
    ),
    # The photos a walk listed and did not keep (licence, placeholder...), so that every
    # run reports them, not only the run that paged them (a dry run's too).
    3: (
        """CREATE TABLE skipped (
            photo_id INTEGER NOT NULL,
            size TEXT NOT NULL,
            query TEXT NOT NULL,
            taxon_id INTEGER NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (photo_id, size, query)
        )""",
    ),
}


def upgrade_statements(version: int | None) -> Iterator[str]:
    """The statements that bring a state file of ``version`` (None: a new, empty file) to
    SCHEMA_VERSION, recording it."""
    if version is None:
        yield from (statement for statement in SCHEMA_V1.split(";") if statement.strip())
        yield f"INSERT INTO meta VALUES ('app', '{APP_ID}')"
        yield "INSERT INTO meta VALUES ('schema_version', '1')"
        version = 1
    for step in range(version + 1, SCHEMA_VERSION + 1):
        yield from MIGRATIONS[step]
    yield f"UPDATE meta SET value='{SCHEMA_VERSION}' WHERE key='schema_version'"
