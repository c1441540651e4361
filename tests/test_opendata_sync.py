"""`inatdl opendata sync`: the tables downloaded with resume, not twice when unchanged, and a
columnar copy that a failure at any step never leaves half-written or in use."""

from __future__ import annotations

import errno
import gzip
import json
from pathlib import Path

import duckdb
import pytest
from inat_server import Fault, InatServer, gzip_bytes
from opendata_world import run_open, table_gets
from world import SALICARIA, build_lythrum

from inatdl.opendata import columnar
from inatdl.opendata.columnar import current_copy

TABLES = ("taxa", "observations", "photos", "observers")


@pytest.fixture
def dump(inat: InatServer) -> InatServer:
    build_lythrum(inat)
    return inat


def copied(tmp_path: Path, table: str, sql: str = "SELECT * FROM t ORDER BY ALL") -> list[tuple[object, ...]]:
    copy = current_copy(tmp_path / "open-data")
    assert copy is not None
    con = duckdb.connect()
    con.read_parquet(str(copy.parquet(table))).create_view("t")
    return con.execute(sql).fetchall()


def test_sync_downloads_the_tables_and_says_the_dumps_date(dump: InatServer, tmp_path: Path) -> None:
    result = run_open(dump, tmp_path, "opendata", "sync")
    assert result.exit_code == 0, result.output
    assert "First sync:" in result.stderr and "to download" in result.stderr
    assert "Open data of 2026-11-27 (Last-Modified)" in result.stdout
    assert "Downloaded: taxa, observations, photos, observers" in result.stdout
    folder = tmp_path / "open-data"
    for table in TABLES:
        body = gzip.decompress((folder / f"{table}.csv.gz").read_bytes()).decode()
        assert body == gzip.decompress(dump.open_data_table(table)).decode()
    # the copy holds every row with its declared types
    photos = copied(tmp_path, "photos", "SELECT count(*), min(photo_id), max(photo_id) FROM t")
    assert photos == [(len(dump.open_data_rows("photos")) - 1, 1000, 2040)]
    sql = "SELECT taxon_id, ancestry, rank_level, active FROM t WHERE taxon_id = 61302"
    taxa = copied(tmp_path, "taxa", sql)
    assert taxa == [(61302, "1/61298", 10.0, False)]
    assert not list(folder.glob("*.part"))


def test_an_unchanged_dump_is_neither_downloaded_nor_copied_again(dump: InatServer, tmp_path: Path) -> None:
    assert run_open(dump, tmp_path, "opendata", "sync").exit_code == 0
    before = current_copy(tmp_path / "open-data")
    dump.clear_requests()
    result = run_open(dump, tmp_path, "opendata", "sync")
    assert result.exit_code == 0, result.output
    assert [r.method for r in dump.open_data_requests()] == ["HEAD"] * 4
    assert "Downloaded: none; unchanged: taxa, observations, photos, observers" in result.stdout
    assert "columnar copy already up to date" in result.stdout
    assert "First sync" not in result.stderr
    assert current_copy(tmp_path / "open-data") == before


def test_a_new_dump_replaces_the_changed_tables_and_the_copy(dump: InatServer, tmp_path: Path) -> None:
    assert run_open(dump, tmp_path, "opendata", "sync").exit_code == 0
    old = current_copy(tmp_path / "open-data")
    assert old is not None
    dump.add_observation(999, SALICARIA, photos=[{"id": 9990, "license_code": "cc0"}])
    dump.open_data_modified += 86400 * 30
    dump.clear_requests()
    result = run_open(dump, tmp_path, "opendata", "sync")
    assert result.exit_code == 0, result.output
    assert "Downloaded: observations, photos; unchanged: taxa, observers" in result.stdout
    assert "Open data of 2026-12-27" in result.stdout and "columnar copy made" in result.stdout
    assert copied(tmp_path, "photos", "SELECT count(*) FROM t WHERE photo_id = 9990") == [(1,)]
    assert not old.folder.exists()  # the replaced copy is removed once the new one is in use


def test_a_cut_download_resumes_with_range(dump: InatServer, tmp_path: Path) -> None:
    body = dump.open_data_table("photos")
    dump.add_fault(Fault("short", path_contains="photos.csv.gz", times=20))
    failed = run_open(dump, tmp_path, "opendata", "sync")
    assert failed.exit_code == 1
    assert "photos.csv.gz: connection closed before the whole body arrived after 6 attempts" in failed.stderr
    assert "run `inatdl opendata sync` again to resume" in failed.stderr
    assert (tmp_path / "open-data" / "photos.csv.gz.part").exists()
    assert current_copy(tmp_path / "open-data") is None
    dump.clear_faults()
    assert run_open(dump, tmp_path, "opendata", "sync").exit_code == 0
    gets = [r for r in dump.open_data_requests() if r.method == "GET" and r.path.endswith("/photos.csv.gz")]
    assert [r.header("Range") is not None for r in gets] == [False] + [True] * 6
    assert gets[-1].status == 206
    assert sum(r.sent for r in gets) == len(body)  # nothing was downloaded twice
    assert (tmp_path / "open-data" / "photos.csv.gz").read_bytes() == body


def test_a_part_of_an_older_dump_is_started_over(dump: InatServer, tmp_path: Path) -> None:
    dump.add_fault(Fault("short", path_contains="photos.csv.gz", times=20))
    assert run_open(dump, tmp_path, "opendata", "sync").exit_code == 1
    dump.clear_faults()
    dump.add_observation(999, SALICARIA, photos=[{"id": 9990, "license_code": "cc0"}])  # a new body
    dump.clear_requests()
    assert run_open(dump, tmp_path, "opendata", "sync").exit_code == 0
    gets = [r for r in dump.open_data_requests() if r.method == "GET" and r.path.endswith("/photos.csv.gz")]
    assert [r.header("Range") for r in gets] == [None]
    assert (tmp_path / "open-data" / "photos.csv.gz").read_bytes() == dump.open_data_table("photos")


def test_a_missing_table_is_one_line_naming_it(dump: InatServer, tmp_path: Path) -> None:
    dump.open_data_files["observers"] = None
    result = run_open(dump, tmp_path, "opendata", "sync")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: the open data at {dump.open_data_url} has no observers table (HTTP 404 for "
        f"{dump.open_data_url}/observers.csv.gz); check --open-data-url\n"
    )
    assert table_gets(dump, "taxa") == []  # nothing downloaded before every table is known


@pytest.mark.parametrize("damage", ["not gzip", "truncated", "cut in the header"])
def test_a_corrupt_table_leaves_the_previous_copy_in_use(
    dump: InatServer, tmp_path: Path, damage: str
) -> None:
    assert run_open(dump, tmp_path, "opendata", "sync").exit_code == 0
    before = current_copy(tmp_path / "open-data")
    good = dump.open_data_table("photos")
    big = gzip_bytes(gzip.decompress(good) * 4000)  # several blocks, so a cut one is cut mid-stream
    bad = {
        "not gzip": b"<html>Service Unavailable</html>" * 10,
        "truncated": big[: len(big) * 6 // 10],
        "cut in the header": good[:12],
    }[damage]
    dump.open_data_files["photos"] = bad
    result = run_open(dump, tmp_path, "opendata", "sync")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and errors[0].startswith("Error: the downloaded photos table is unreadable (")
    assert errors[0].endswith("so `inatdl opendata sync` downloads it again (the previous copy stays in use)")
    assert current_copy(tmp_path / "open-data") == before
    assert not list((tmp_path / "open-data").glob("columnar-*.new"))
    del dump.open_data_files["photos"]
    dump.clear_requests()
    assert run_open(dump, tmp_path, "opendata", "sync").exit_code == 0
    assert table_gets(dump, "photos") == [200]


def test_extra_columns_are_ignored_and_a_missing_one_is_named(dump: InatServer, tmp_path: Path) -> None:
    rows = dump.open_data_rows("observations")
    wider = "".join("\t".join([*row, "extra" if i == 0 else "x"]) + "\n" for i, row in enumerate(rows))
    dump.open_data_files["observations"] = gzip_bytes(wider.encode())
    assert run_open(dump, tmp_path, "opendata", "sync").exit_code == 0
    assert "extra" not in [c[0] for c in copied(tmp_path, "observations", "DESCRIBE t")]
    photos = dump.open_data_rows("photos")
    narrower = "".join("\t".join(r[:5] + r[6:]) + "\n" for r in photos)  # no license column
    dump.open_data_files["photos"] = gzip_bytes(narrower.encode())
    result = run_open(dump, tmp_path, "opendata", "sync")
    assert result.exit_code == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("Error: the open data's photos table has no column license (columns found:")


def test_names_with_quotes_are_read_as_written(inat: InatServer, tmp_path: Path) -> None:
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(2, 'Rosa "Peace" x o\'hara', parent_id=1)
    inat.add_observation(10, 2, photos=[{"id": 100}], user_login="o'neil")
    assert run_open(inat, tmp_path, "opendata", "sync").exit_code == 0
    assert copied(tmp_path, "taxa", "SELECT name FROM t WHERE taxon_id = 2") == [('Rosa "Peace" x o\'hara',)]
    assert copied(tmp_path, "observers", "SELECT login, name FROM t") == [("o'neil", None)]


def test_a_full_disk_or_ctrl_c_during_the_copy_keeps_the_previous_copy(
    dump: InatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_open(dump, tmp_path, "opendata", "sync").exit_code == 0
    folder = tmp_path / "open-data"
    before, record = current_copy(folder), (folder / "current.json").read_text()
    real_copy = columnar.copy_table
    dump.add_observation(999, SALICARIA, photos=[{"id": 9990, "license_code": "cc0"}])

    for failure, code in ((OSError(errno.ENOSPC, "No space left on device"), 1), (KeyboardInterrupt(), 130)):

        def failing(
            source: Path, table: str, target: Path, open_data_dir: Path, exc: BaseException = failure
        ) -> None:
            if table == "photos":
                target.write_bytes(b"half a parquet file")
                raise exc
            real_copy(source, table, target, open_data_dir)

        monkeypatch.setattr(columnar, "copy_table", failing)
        result = run_open(dump, tmp_path, "opendata", "sync")
        assert result.exit_code == code
        if code == 1:
            assert "is full; free some space and run the same command again" in result.stderr
        assert current_copy(folder) == before and (folder / "current.json").read_text() == record
        assert not list(folder.glob("columnar-*.new"))
    monkeypatch.setattr(columnar, "copy_table", real_copy)
    dump.clear_requests()
    assert run_open(dump, tmp_path, "opendata", "sync").exit_code == 0
    assert [r.method for r in dump.open_data_requests()] == ["HEAD"] * 4  # downloaded once, copied now
    assert copied(tmp_path, "photos", "SELECT count(*) FROM t WHERE photo_id = 9990") == [(1,)]
    assert json.loads((folder / "current.json").read_text())["folder"] != before.folder.name  # type: ignore[union-attr]


def test_the_default_open_data_dir_is_the_users_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from inatdl.opendata import default_open_data_dir

    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_open_data_dir() == tmp_path / "cache" / "inatdl" / "open-data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_open_data_dir() == Path.home() / ".cache" / "inatdl" / "open-data"
    monkeypatch.setattr("sys.platform", "darwin")
    assert default_open_data_dir() == Path.home() / "Library" / "Caches" / "inatdl" / "open-data"
