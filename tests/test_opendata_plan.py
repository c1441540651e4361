"""PLAN_SQL on tiny tables: routing by ancestry, filters, caps, duplicates, attribution."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from inatdl.constants import ALL_LICENSES
from inatdl.observations import Filters
from inatdl.opendata.columnar import Copy
from inatdl.opendata.plan import PlannedTaxon, planned_photos
from inatdl.opendata.tables import COLUMNS

# Life 48460 > Plantae 1 > Lythrum 20 > L. salicaria 30 > its variety 31; L. alatum 40.
TAXA = [
    (48460, "", 100.0, "stateofmatter", "Life", True),
    (1, "48460", 70.0, "kingdom", "Plantae", True),
    (20, "48460/1", 20.0, "genus", "Lythrum", True),
    (30, "48460/1/20", 10.0, "species", "Lythrum salicaria", True),
    (31, "48460/1/20/30", 5.0, "variety", "Lythrum salicaria tomentosum", True),
    (40, "48460/1/20", 10.0, "species", "Lythrum alatum", True),
]
OBSERVERS = [(7, "ann", "Ann Example"), (8, "bob", None)]
OBSERVATIONS = [  # uuid, observer, lat, lng, accuracy, taxon, quality, observed_on
    ("o-1", 7, 10.0, 20.0, 5.0, 30, "research", "2020-01-01"),
    ("o-2", 8, 11.0, 179.5, None, 31, "needs_id", "2021-06-01"),
    ("o-3", 8, None, None, None, 40, "casual", "2022-02-02"),
    ("o-4", 7, 12.0, -179.5, None, 20, "research", None),
    ("o-5", 7, 10.0, 20.0, None, 30, "research", "2020-01-02"),
]
PHOTOS = [  # photo_id, observation, observer, extension, licence, position
    (101, "o-1", 7, "jpg", "CC-BY-NC", 0),
    (102, "o-1", 7, "JPEG", "PD", 1),
    (201, "o-2", 8, "png", "CC0", 0),
    (301, "o-3", 8, "jpg", "CC-BY-SA", 0),
    (401, "o-4", 7, "jpg", "CC-BY", 0),  # a genus observation: under no listed species
    (501, "o-5", 7, "jpg", "CC-BY", 0),
    (101, "o-5", 7, "jpg", "CC-BY-NC", 1),  # photo 101 under a second observation
    (502, "o-5", 7, "tiff", "CC-BY", 2),  # not an image extension inatdl writes
]


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Copy:
    folder = tmp_path_factory.mktemp("columnar")
    con = duckdb.connect()
    for table, rows in (("taxa", TAXA), ("observers", OBSERVERS), ("observations", OBSERVATIONS),
                        ("photos", PHOTOS)):  # fmt: skip
        columns = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS[table].items())
        con.execute(f"CREATE TABLE {table} ({columns})")
        con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(COLUMNS[table]))})", rows)
        con.execute(f"COPY {table} TO '{folder / table}.parquet' (FORMAT parquet)")
    return Copy(folder, "2026-11-27", {})


def plan(copy: Copy, taxa: list[PlannedTaxon], **filters: Any) -> list[dict[str, Any]]:
    licenses = filters.pop("licenses", (*ALL_LICENSES, "pd"))
    batches = planned_photos(
        copy, copy.folder, taxa, "medium", Filters(licenses, **filters), "https://open.example", batch_rows=2
    )
    return [row for batch in batches for row in batch]


SPECIES = [
    PlannedTaxon(30, "Lythrum salicaria", "Lythrum_salicaria"),
    PlannedTaxon(40, "Lythrum alatum", "LA"),
]


def ids(rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(r["taxon_id"], r["photo_id"]) for r in rows]


def test_descendants_go_to_the_most_specific_listed_taxon(copy: Copy) -> None:
    assert ids(plan(copy, SPECIES)) == [(30, 101), (30, 102), (30, 201), (30, 501), (40, 301)]
    with_variety = [*SPECIES, PlannedTaxon(31, "Lythrum salicaria tomentosum", "LST")]
    assert ids(plan(copy, with_variety)) == [(30, 101), (30, 102), (30, 501), (31, 201), (40, 301)]
    genus = plan(copy, [PlannedTaxon(20, "Lythrum", "Lythrum")])
    assert ids(genus) == [(20, 101), (20, 102), (20, 201), (20, 301), (20, 401), (20, 501)]


def test_every_column_as_photos_csv_writes_it(copy: Copy) -> None:
    rows = {r["photo_id"]: r for r in plan(copy, SPECIES)}
    assert rows[102] == {
        "photo_id": 102,
        "observation_uuid": "o-1",
        "taxon_id": 30,
        "taxon_name": "Lythrum salicaria",
        "observed_taxon_id": 30,
        "observed_taxon_name": "Lythrum salicaria",
        "path": "Lythrum_salicaria/102_medium.jpeg",
        "url": "https://open.example/photos/102/medium.JPEG",
        "license_code": "pd",
        "attribution": "Ann Example, no known copyright restrictions (public domain)",
        "observer": "ann",
        "quality_grade": "research",
        "latitude": 10.0,
        "longitude": 20.0,
        "observed_on": "2020-01-01",
        "observation_url": "https://www.inaturalist.org/observations/o-1",
        "positional_accuracy": 5,
        "extension": "jpeg",
    }
    assert rows[101]["attribution"] == "(c) Ann Example, some rights reserved (CC BY-NC)"
    assert rows[201]["attribution"] == "(c) bob, no rights reserved (CC0)"  # no name: the login
    assert rows[201]["observed_taxon_name"] == "Lythrum salicaria tomentosum"
    assert rows[301]["attribution"] == "(c) bob, some rights reserved (CC BY-SA)"


def test_a_photo_under_two_observations_is_planned_once(copy: Copy) -> None:
    rows = plan(copy, SPECIES)
    assert [r["observation_uuid"] for r in rows if r["photo_id"] == 101] == ["o-1"]


def test_filters(copy: Copy) -> None:
    assert ids(plan(copy, SPECIES, licenses=("cc-by", "cc0"))) == [(30, 201), (30, 501)]
    assert ids(plan(copy, SPECIES, licenses=("pd",))) == [(30, 102)]
    assert ids(plan(copy, SPECIES, quality=("needs_id", "casual"))) == [(30, 201), (40, 301)]
    box_over_antimeridian = (10.5, 179.0, 13.0, -179.0)
    genus = [PlannedTaxon(20, "Lythrum", "Lythrum")]
    assert ids(plan(copy, genus, bbox=box_over_antimeridian)) == [(20, 201), (20, 401)]
    assert ids(plan(copy, genus, bbox=(9.0, 19.0, 10.5, 21.0))) == [(20, 101), (20, 102), (20, 501)]
    dated = plan(copy, genus, observed_from="2020-01-02", observed_to="2021-12-31")
    # o-1 (2020-01-01) is out, but its photo 101 is also under o-5, which is in; o-4 has no date
    assert ids(dated) == [(20, 101), (20, 201), (20, 501)]


def test_cursor_and_cap_keep_the_lowest_photo_ids(copy: Copy) -> None:
    capped = [
        PlannedTaxon(30, "Lythrum salicaria", "LS", room=2),
        PlannedTaxon(40, "Lythrum alatum", "LA", room=0),
    ]
    assert ids(plan(copy, capped)) == [(30, 101), (30, 102)]
    after = [PlannedTaxon(30, "Lythrum salicaria", "LS", after=102, room=1)]
    assert ids(plan(copy, after)) == [(30, 201)]
    assert plan(copy, []) == []


def test_the_plan_file_is_streamed_in_bounded_batches_from_a_bounded_engine(copy: Copy) -> None:
    """Memory stays flat as the dump grows: the engine works under its memory limit and
    hands the plan on in batches of at most batch_rows rows, never the whole result."""
    from inatdl.opendata.engine import MEMORY_LIMIT, connect
    from inatdl.opendata.plan import PLAN_FILE_BATCH_ROWS, planned_tables

    filters = Filters((*ALL_LICENSES, "pd"))
    batches = planned_tables(copy, copy.folder, SPECIES, "medium", filters, "https://o.example", batch_rows=2)
    tables = list(batches)
    assert [t.num_rows for t in tables] == [2, 2, 1]
    columns = [zip(t["taxon_id"].to_pylist(), t["photo_id"].to_pylist(), strict=True) for t in tables]
    planned = [pair for pairs in columns for pair in pairs]
    assert planned == ids(plan(copy, SPECIES))  # each taxon's photos in photo id order, across batches
    assert PLAN_FILE_BATCH_ROWS <= 10_000  # 100,000 rows a batch cost ~130 MB more at 10 M photo rows
    con = connect(copy.folder)
    try:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()
    finally:
        con.close()
    assert MEMORY_LIMIT == "256MB" and limit == ("244.1 MiB",)  # DuckDB's MB is 10**6 bytes
