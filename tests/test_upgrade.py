"""A data dir written by the release before state version 2 (tests/fixtures/data-dir-v1,
made by that release's code: tests/fixtures/make_data_dir_v1.py) is upgraded in place by
its first `photos fetch`: nothing downloaded again, the new photos.csv columns empty for
the rows the old state never knew them for; other commands read it as it is."""

from __future__ import annotations

import csv
import json
import re
import shutil
import sqlite3
import tarfile
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fakes import FakeClock
from fixtures.make_data_dir_v1 import DATA_DIR, IRIS, OAK, fixture_world
from inat_server import OBSCURED_ACCURACY, InatServer
from test_export import hf, load  # noqa: F401 - hf is a fixture
from world import manifest, run

from inatdl import migrations
from inatdl.errors import StateError
from inatdl.photo import ADDED_COLUMNS, MANIFEST_COLUMNS, PhotoRecord
from inatdl.state import SCHEMA_VERSION, Store

OLD_COLUMNS = [c for c in MANIFEST_COLUMNS if c not in ADDED_COLUMNS]
OLD_PHOTOS = {"1011", "1012", "1021", "2011"}


def old_data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    return data


def version(data: Path) -> int:
    with sqlite3.connect(data / "state.sqlite") as db:
        return int(db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])


def photo_columns(path: Path) -> list[tuple[str, str, int]]:
    """(name, type, not null) of each column of the state's photos table."""
    with sqlite3.connect(path) as db:
        return [
            (name, kind, notnull) for _, name, kind, notnull, *_ in db.execute("PRAGMA table_info(photos)")
        ]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_fixture_is_a_data_dir_of_the_previous_release() -> None:
    assert version(DATA_DIR) == 1
    assert next(csv.reader((DATA_DIR / "photos.csv").open(encoding="utf-8"))) == OLD_COLUMNS
    assert ("observation_id", "INTEGER", 1) in photo_columns(DATA_DIR / "state.sqlite")


def test_the_first_fetch_upgrades_an_old_data_dir_in_place(inat: InatServer, tmp_path: Path) -> None:
    """The old rows stay as they were, their new columns empty: their observations are not
    paged again (the walk continues after its cursor), so the state never learns them; the
    observations made since (iNaturalist's ids only grow) fill them."""
    data = old_data_dir(tmp_path)
    fixture_world(inat)
    inat.add_observation(301, OAK, photos=[{"id": 3011, "license_code": "cc-by"}])
    inat.set_coordinates_privacy(301, accuracy=10, geoprivacy="obscured")
    inat.add_observation(302, IRIS, photos=[{"id": 3021, "license_code": "cc-by"}])
    inat.set_coordinates_privacy(302, accuracy=374)
    before = {row["photo_id"]: row for row in manifest(data)}
    old_files = {p: p.read_bytes() for p in (data / "photos").rglob("*") if p.is_file()}

    result = run(inat, data, "photos", "fetch", "--size", "square")

    assert result.exit_code == 0, result.output
    said = f"upgrading the state file {data / 'state.sqlite'} to version {SCHEMA_VERSION}, once\n"
    assert said in result.stderr
    assert version(data) == SCHEMA_VERSION
    assert sorted(r.path for r in inat.photo_requests()) == [
        "/photos/3011/square.jpg",
        "/photos/3021/square.jpg",
    ]
    assert {r.query.get("id_above") for r in inat.requests_to("/v1/observations")} == {"201"}
    assert all(p.read_bytes() == content for p, content in old_files.items())
    rows = {row["photo_id"]: row for row in manifest(data)}
    assert list(next(iter(rows.values()))) == list(MANIFEST_COLUMNS)
    for photo_id in OLD_PHOTOS:
        assert rows[photo_id] == {**before[photo_id], **dict.fromkeys(ADDED_COLUMNS, "")}
    new = {p: {c: rows[p][c] for c in ADDED_COLUMNS} for p in ("3011", "3021")}
    assert new == {
        "3011": {
            "observation_uuid": inat.observation(301)["uuid"],
            "positional_accuracy": str(OBSCURED_ACCURACY),
            "coordinates_obscured": "true",
        },
        "3021": {
            "observation_uuid": inat.observation(302)["uuid"],
            "positional_accuracy": "374",
            "coordinates_obscured": "false",
        },
    }
    assert photo_columns(data / "state.sqlite") == photo_columns(new_state(tmp_path))

    inat.clear_requests()  # a second run: nothing to upgrade, nothing to download
    result = run(inat, data, "photos", "fetch", "--size", "square")
    assert result.exit_code == 0 and "upgrading" not in result.stderr
    assert inat.photo_requests() == [] and version(data) == SCHEMA_VERSION
    assert {row["photo_id"]: row for row in manifest(data)} == rows


def new_state(tmp_path: Path) -> Path:
    """A state file made by today's code from nothing."""
    path = tmp_path / "new.sqlite"
    Store(path, FakeClock()).close()
    return path


def test_an_upgraded_state_takes_photos_without_an_observation_id(tmp_path: Path) -> None:
    """The open-data route lists photos by observation uuid alone."""
    data = old_data_dir(tmp_path)
    store = Store(data / "state.sqlite", FakeClock())
    record = PhotoRecord(
        photo_id=9001, observation_id=None, taxon_id=OAK, taxon_name="Quercus robur", observed_taxon_id=OAK,
        observed_taxon_name="Quercus robur", size="square", path="photos/Quercus_robur/9001_square.jpg",
        url="http://host/photos/9001/square.jpg", license_code="cc0", attribution="(c) someone",
        observer="someone", quality_grade="research", latitude=38.5, longitude=-9.0, observed_on="3024-05-01",
        observation_url="https://www.inaturalist.org/observations/abc", observation_uuid="abc",
        positional_accuracy=None, coordinates_obscured=None, query="open-data",
    )  # fmt: skip
    store.record_page([], [record])
    store.close()
    with sqlite3.connect(data / "state.sqlite") as db:
        row = db.execute("SELECT observation_id, observation_uuid FROM photos WHERE photo_id=9001").fetchone()
    assert row == (None, "abc")


def listed(photo_id: int, observation_id: int | None) -> PhotoRecord:
    return PhotoRecord(
        photo_id=photo_id, observation_id=observation_id, taxon_id=OAK, taxon_name="Quercus robur",
        observed_taxon_id=OAK, observed_taxon_name="Quercus robur", size="square",
        path=f"photos/Quercus_robur/{photo_id}_square.jpg", url=f"http://host/photos/{photo_id}/square.jpg",
        license_code="cc0", attribution="(c) someone", observer="someone", quality_grade="research",
        latitude=None, longitude=None, observed_on=None, observation_url="https://www.inaturalist.org/observations/x",
        observation_uuid=f"uuid-{photo_id}", positional_accuracy=None, coordinates_obscured=None, query="q",
    )  # fmt: skip


def test_photos_without_an_observation_id_are_retried_too(tmp_path: Path) -> None:
    """A run stopped before downloading what it listed from the open data (no observation
    ids) takes those photos up again, however many batches they fill."""
    store = Store(tmp_path / "state.sqlite", FakeClock())
    store.record_page(
        [], [listed(p, o) for p, o in [(5, None), (2, None), (9, None), (1, 7), (3, 4), (4, 4)]]
    )
    store.record_page([], [listed(8, None)])
    with store.transaction():
        store.db.execute("UPDATE photos SET status='done' WHERE photo_id=8")
    assert [job.photo_id for job in store.jobs_to_retry(OAK, "square", batch=2)] == [2, 5, 9, 3, 4, 1]
    store.close()


def test_an_upgrade_that_fails_leaves_the_state_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The steps and the new version are one transaction: a step failing half way (a full
    disk) rolls back the rebuilt table too, for the next run to upgrade from the start."""
    data = old_data_dir(tmp_path)
    path = data / "state.sqlite"
    columns = photo_columns(path)
    with sqlite3.connect(path) as db:
        photos = db.execute("SELECT * FROM photos ORDER BY photo_id").fetchall()
    failing = (
        *migrations.MIGRATIONS[2][:3],
        "INSERT INTO no_such_table VALUES (1)",
        *migrations.MIGRATIONS[2][3:],
    )
    monkeypatch.setitem(migrations.MIGRATIONS, 2, failing)
    with pytest.raises(StateError, match="no_such_table"):
        Store(path, FakeClock())
    assert version(data) == 1 and photo_columns(path) == columns
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT * FROM photos ORDER BY photo_id").fetchall() == photos
    monkeypatch.undo()
    Store(path, FakeClock()).close()
    assert version(data) == SCHEMA_VERSION


def test_other_commands_read_an_old_data_dir_as_it_is(inat: InatServer, tmp_path: Path) -> None:
    """`dataset export` reads photos.csv as the old release wrote it; it neither needs nor
    makes the upgrade. The card says whether coordinates are obscured is not known."""
    data = old_data_dir(tmp_path)
    state_bytes = (data / "state.sqlite").read_bytes()
    out = tmp_path / "dataset"
    result = run(inat, data, "dataset", "export", str(out))
    assert result.exit_code == 0, result.output
    rows = read_csv(out / "metadata.csv")
    assert sorted(row["photo_id"] for row in rows) == sorted(OLD_PHOTOS)
    assert list(rows[0]) == ["file_name", "label", *OLD_COLUMNS]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "Whether coordinates are obscured is not known: photos.csv predates that column." in card
    assert (data / "state.sqlite").read_bytes() == state_bytes
    assert inat.requests == []


def test_an_export_carries_the_new_columns_and_counts_obscured_photos(
    inat: InatServer, tmp_path: Path
) -> None:
    data = old_data_dir(tmp_path)
    fixture_world(inat)
    inat.add_observation(301, OAK, photos=[{"id": 3011, "license_code": "cc-by"}, {"id": 3012}])
    inat.set_coordinates_privacy(301, accuracy=10, taxon_geoprivacy="obscured")
    inat.add_observation(302, IRIS, photos=[{"id": 3021, "license_code": "cc-by"}])
    inat.set_coordinates_privacy(302, accuracy=374)
    assert run(inat, data, "photos", "fetch", "--size", "square").exit_code == 0
    out = tmp_path / "dataset"
    result = run(inat, data, "dataset", "export", str(out))
    assert result.exit_code == 0, result.output
    rows = {row["photo_id"]: row for row in read_csv(out / "metadata.csv")}
    assert list(next(iter(rows.values()))) == ["file_name", "label", *MANIFEST_COLUMNS]
    assert {p: rows[p]["coordinates_obscured"] for p in rows} == {
        **dict.fromkeys(OLD_PHOTOS, ""),
        "3011": "true",
        "3012": "true",
        "3021": "false",
    }
    assert rows["3012"]["positional_accuracy"] == str(OBSCURED_ACCURACY)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "2 of 7 photos have obscured coordinates (`coordinates_obscured`)" in card
    assert "For 4 it is not known (listed by an earlier inatdl)." in card


def test_parquet_and_webdataset_exports_type_the_new_columns_as_the_plan_does(
    inat: InatServer, tmp_path: Path
) -> None:
    """`coordinates_obscured` true, false or null (not known), not the text 'true'/'false';
    `positional_accuracy` an integer, null when not known: as `photos plan` writes them and
    as Hugging Face's loader reads the imagefolder's metadata.csv."""
    data = old_data_dir(tmp_path)
    fixture_world(inat)
    inat.add_observation(301, OAK, photos=[{"id": 3011, "license_code": "cc-by"}, {"id": 3012}])
    inat.set_coordinates_privacy(301, accuracy=10, taxon_geoprivacy="obscured")
    inat.add_observation(302, IRIS, photos=[{"id": 3021, "license_code": "cc-by"}])
    inat.set_coordinates_privacy(302, accuracy=374)
    assert run(inat, data, "photos", "fetch", "--size", "square").exit_code == 0
    obscured = {**dict.fromkeys(OLD_PHOTOS), "3011": True, "3012": True, "3021": False}
    accuracy = {
        **dict.fromkeys(OLD_PHOTOS),
        "3011": OBSCURED_ACCURACY,
        "3012": OBSCURED_ACCURACY,
        "3021": 374,
    }
    out = {format_: tmp_path / format_ for format_ in ("parquet", "webdataset")}
    for format_, folder in out.items():
        assert run(inat, data, "dataset", "export", str(folder), "--format", format_).exit_code == 0

    tables = [pq.read_table(path) for path in sorted((out["parquet"] / "data").glob("*.parquet"))]
    for table in tables:
        assert table.schema.field("coordinates_obscured").type == pa.bool_()
        assert table.schema.field("positional_accuracy").type == pa.int64()
        features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
        assert features["coordinates_obscured"] == {"dtype": "bool", "_type": "Value"}
        assert features["positional_accuracy"] == {"dtype": "int64", "_type": "Value"}
    rows = {str(row["photo_id"]): row for table in tables for row in table.to_pylist()}
    assert {p: row["coordinates_obscured"] for p, row in rows.items()} == obscured
    assert {p: row["positional_accuracy"] for p, row in rows.items()} == accuracy

    samples = {}
    for shard in sorted(out["webdataset"].glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".json") and (handle := tar.extractfile(member)) is not None:
                    samples[member.name.split(".")[0]] = json.loads(handle.read())
    assert {p: sample["coordinates_obscured"] for p, sample in samples.items()} == obscured
    card = (out["webdataset"] / "README.md").read_text(encoding="utf-8")
    assert re.search(r'- name: "coordinates_obscured"\s+dtype: "bool"', card)  # the loader's features


def test_a_split_export_of_an_upgraded_data_dir_keeps_coordinates_obscured(
    inat: InatServer,
    tmp_path: Path,
    hf: ModuleType,  # noqa: F811 - the fixture imported
) -> None:
    """One split holding photos listed before the upgrade (obscured unknown) and another
    none: the loader types the column as booleans in both, so the export keeps it."""
    data = old_data_dir(tmp_path)
    fixture_world(inat)
    for i in range(12):
        inat.add_observation(
            400 + i, OAK, photos=[{"id": 4000 + i, "license_code": "cc-by"}], user_login=f"u{i}"
        )
        inat.set_coordinates_privacy(400 + i, accuracy=10, taxon_geoprivacy="obscured" if i % 2 else None)
    assert run(inat, data, "photos", "fetch", "--size", "square").exit_code == 0
    out = tmp_path / "dataset"
    result = run(inat, data, "dataset", "export", str(out), "--split", "train=0.5,test=0.5", "--seed", "0")
    assert result.exit_code == 0, result.output
    splits = {
        split: {row["photo_id"]: row for row in read_csv(out / split / "metadata.csv")}
        for split in ("train", "test")
    }
    unknown = {
        split
        for split, rows in splits.items()
        if any(rows[p]["coordinates_obscured"] == "" for p in OLD_PHOTOS & set(rows))
    }
    assert len(unknown) == 1  # the case this test is about: unknowns in one split only
    dataset = load(hf, out)
    assert {split: dataset[split].features["coordinates_obscured"].dtype for split in dataset} == {
        "train": "bool",
        "test": "bool",
    }
