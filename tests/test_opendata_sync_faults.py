"""`inatdl opendata sync` when things go wrong mid-download: a second sync on the same
folder, a disk that fills, a Ctrl-C. Each leaves the part for a `Range` resume and the
previous copy in use, and says so in one line."""

from __future__ import annotations

import errno
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inat_server import Fault, InatServer
from opendata_world import run_open
from world import SALICARIA, build_lythrum

from inatdl.opendata.columnar import current_copy

HELD_AFTER = 256  # bytes of photos.csv.gz the server sends before it holds the rest


@pytest.fixture
def dump(inat: InatServer) -> InatServer:
    build_lythrum(inat)
    return inat


def photos_gets(inat: InatServer) -> list[Any]:
    return [r for r in inat.open_data_requests() if r.method == "GET" and r.path.endswith("/photos.csv.gz")]


def wait_for_size(path: Path, size: int, child: subprocess.Popen[str]) -> None:
    """Until the child has written ``size`` bytes to ``path`` (it then waits on the server)."""
    deadline = time.monotonic() + 30
    while not (path.exists() and path.stat().st_size >= size):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, f"{path} never reached {size} bytes"
        time.sleep(0.02)


@pytest.fixture
def held_sync(dump: InatServer, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A real sync in a child process, stopped by the server in the middle of photos.csv.gz
    (HELD_AFTER bytes written to its part) until the test signals it."""
    held = Fault("drip", path_contains="photos.csv.gz", delay=0, chunk_size=64, hold_after=HELD_AFTER)
    dump.add_fault(held)
    command = [
        sys.executable, "-m", "inatdl", "--open-data-url", dump.open_data_url,
        "--open-data-dir", str(tmp_path / "open-data"), "opendata", "sync",
    ]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_size(tmp_path / "open-data" / "photos.csv.gz.part", HELD_AFTER, child)
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()


def test_ctrl_c_mid_download_keeps_the_part_and_the_next_sync_resumes_with_range(
    dump: InatServer, tmp_path: Path, held_sync: subprocess.Popen[str]
) -> None:
    folder = tmp_path / "open-data"
    body = dump.open_data_table("photos")
    held_sync.send_signal(signal.SIGINT)
    _, err = held_sync.communicate(timeout=30)
    assert held_sync.returncode == 130, err
    assert err.splitlines()[-1] == "Error: interrupted; the same command resumes"
    assert "Traceback" not in err
    assert (folder / "photos.csv.gz.part").read_bytes() == body[:HELD_AFTER]
    assert current_copy(folder) is None
    dump.clear_faults()
    dump.clear_requests()
    result = run_open(dump, tmp_path, "opendata", "sync")
    assert result.exit_code == 0, result.output
    gets = photos_gets(dump)
    assert [(r.header("Range"), r.status) for r in gets] == [(f"bytes={HELD_AFTER}-", 206)]
    assert gets[0].sent == len(body) - HELD_AFTER  # only the rest was sent again
    assert (folder / "photos.csv.gz").read_bytes() == body
    assert not (folder / "photos.csv.gz.part").exists()


def test_a_second_sync_on_the_same_folder_is_refused_in_one_line(
    dump: InatServer, tmp_path: Path, held_sync: subprocess.Popen[str]
) -> None:
    folder = tmp_path / "open-data"
    dump.clear_requests()
    second = run_open(dump, tmp_path, "opendata", "sync")
    assert second.exit_code == 1
    assert second.stderr == (
        f"Error: another inatdl (pid {held_sync.pid}) is using {folder}; wait for it to finish, "
        "or use another --open-data-dir\n"
    )
    assert dump.open_data_requests() == []  # it asked nothing and wrote nothing
    assert (folder / "photos.csv.gz.part").stat().st_size == HELD_AFTER
    held_sync.send_signal(signal.SIGINT)
    held_sync.communicate(timeout=30)
    dump.clear_faults()
    assert run_open(dump, tmp_path, "opendata", "sync").exit_code == 0
    for table in ("taxa", "observations", "photos", "observers"):
        assert (folder / f"{table}.csv.gz").read_bytes() == dump.open_data_table(table)
    assert current_copy(folder) is not None


class FillingFile:
    """A file on a disk that is full once ``room`` bytes are written: the write that does
    not fit writes what fits, then fails as the OS does (ENOSPC)."""

    def __init__(self, handle: Any, room: int) -> None:
        self.handle, self.room = handle, room

    def __enter__(self) -> FillingFile:
        return self

    def write(self, data: Any) -> int:
        fits = bytes(data)[: max(0, self.room - self.handle.tell())]
        self.handle.write(fits)
        if len(fits) < len(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        return len(fits)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


def test_a_full_disk_mid_download_keeps_the_part_and_the_previous_copy(
    dump: InatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "open-data"
    assert run_open(dump, tmp_path, "opendata", "sync").exit_code == 0
    before, old_photos = current_copy(folder), (folder / "photos.csv.gz").read_bytes()
    dump.add_observation(999, SALICARIA, photos=[{"id": 9990, "license_code": "cc0"}])
    dump.open_data_modified += 86400 * 30
    new_photos = dump.open_data_table("photos")
    room = len(new_photos) // 3
    real_open = pathlib.Path.open

    def filling_open(path: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(path, mode, *args, **kwargs)
        return FillingFile(handle, room) if path.name == "photos.csv.gz.part" else handle

    monkeypatch.setattr(pathlib.Path, "open", filling_open)
    dump.clear_requests()
    full = run_open(dump, tmp_path, "opendata", "sync")
    assert full.exit_code == 1
    assert full.stderr.splitlines()[-1] == (
        f"Error: the disk holding {folder / 'photos.csv.gz.part'} is full; free some space and run "
        "the same command again (nothing done so far is lost)"
    )
    assert (folder / "photos.csv.gz.part").read_bytes() == new_photos[:room]
    assert current_copy(folder) == before  # the previous copy stays in use, whole
    assert (folder / "photos.csv.gz").read_bytes() == old_photos
    resolved = run_open(dump, tmp_path, "taxa", "resolve", "--source", "open-data", str(species(tmp_path)))
    assert resolved.exit_code == 0, resolved.output
    monkeypatch.setattr(pathlib.Path, "open", real_open)
    dump.clear_requests()
    assert run_open(dump, tmp_path, "opendata", "sync").exit_code == 0
    gets = photos_gets(dump)
    assert [(r.header("Range"), r.status) for r in gets] == [(f"bytes={room}-", 206)]
    assert gets[0].sent == len(new_photos) - room
    assert (folder / "photos.csv.gz").read_bytes() == new_photos
    assert current_copy(folder) != before


def species(tmp_path: Path) -> Path:
    path = tmp_path / "species.csv"
    path.write_text("name\nLythrum salicaria\n", encoding="utf-8")
    return path


def test_an_unreachable_host_says_to_check_the_connection_and_the_url(
    inat: InatServer, tmp_path: Path
) -> None:
    dead = "http://127.0.0.1:9/open-data"
    result = run_open(inat, tmp_path, "--open-data-url", dead, "opendata", "sync")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {dead}/taxa.csv.gz: connection refused after 6 attempts; check your connection and "
        "--open-data-url, then run the same command again\n"
    )
