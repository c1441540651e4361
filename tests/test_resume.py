"""Stopping at any instant and running again: SIGKILL, Ctrl-C, two runs, the state file."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from fakes import FakeClock
from inat_server import Fault, InatServer
from world import files, manifest_ids, run, start, two_taxa, write_taxa

FETCH_SMALL = ("photos", "fetch", "--size", "small")


def make_world(inat: InatServer, data: Path, observations: int = 300) -> dict[str, bytes]:
    """Two taxa with ``observations`` one-photo observations each; their expected files."""
    return two_taxa(inat, data, observations, "small", second="Lythrum × scabrum")


def wait_for_photos(inat: InatServer, count: int, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while len(inat.photo_requests()) < count:
        assert time.monotonic() < deadline, "the child never got going"
        time.sleep(0.01)


def test_sigkill_at_random_moments_then_finish(inat: InatServer, tmp_path: Path) -> None:
    """A soak: killed with SIGKILL again and again, then run to the end: every file whole,
    the manifest lists each once, and at most the photos in flight were fetched twice.
    Each run gets at most 100 photos before the host holds the rest, so on any machine
    at least three runs are killed before the job could end."""
    data = tmp_path / "data"
    expected = make_world(inat, data)
    inat.latency = 0.02
    rng = random.Random(2024)
    kills = 0
    for _ in range(8):
        _, release = hold_photos_after(inat, 100)
        child = start(inat, data, "--workers", "6")
        time.sleep(rng.uniform(0.3, 1.2))
        if child.poll() is not None:
            break
        child.send_signal(signal.SIGKILL)
        child.wait()
        release.set()
        kills += 1
        for path, content in files(data).items():  # whatever is under a final name is whole
            if not path.endswith(".part"):
                assert content == expected[path], path
    inat.on_request = None
    child = start(inat, data, "--workers", "6")
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert kills >= 3
    assert files(data) == expected
    ids = manifest_ids(data)
    assert len(ids) == len(set(ids)) == len(expected)
    assert not list(data.rglob("*.part"))
    gets = [r.path for r in inat.photo_requests()]
    assert len(gets) - len(set(gets)) <= kills * 6  # only those in flight at a kill


def hold_photos_after(inat: InatServer, count: int) -> tuple[threading.Event, threading.Event]:
    """Let ``count`` photo requests through, then hold the rest until the test releases them:
    a signal sent in between lands in the middle of the job, however fast the machine."""
    served = itertools.count(1)
    holding, release = threading.Event(), threading.Event()

    def hold(host: str, path: str, query: dict[str, str]) -> None:
        if path.startswith("/photos/") and next(served) > count:
            holding.set()
            release.wait(timeout=30)

    inat.on_request = hold
    return holding, release


def test_ctrl_c_saves_state_and_exits_130(inat: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    expected = make_world(inat, data)
    holding, release = hold_photos_after(inat, 40)
    child = start(inat, data, "--workers", "4")
    assert holding.wait(timeout=30)
    child.send_signal(signal.SIGINT)
    release.set()
    out, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert "Interrupted: state saved; run the same command again to resume." in err
    assert "Traceback" not in err
    done_first = manifest_ids(data)
    assert 30 <= len(done_first) < len(expected)
    inat.clear_requests()
    inat.on_request = None
    child = start(inat, data)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert files(data) == expected
    refetched = {r.path.split("/")[2] for r in inat.photo_requests()} & set(done_first)
    assert not refetched
    # the paging went on from the saved cursors, not from the start
    assert all(
        r.query["id_above"] != "0" or r.query["taxon_id"] == "20"
        for r in inat.requests_to("/v1/observations")
    )


def test_sigterm_is_like_ctrl_c(inat: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    expected = make_world(inat, data)
    holding, release = hold_photos_after(inat, 10)
    child = start(inat, data)
    assert holding.wait(timeout=30)
    child.send_signal(signal.SIGTERM)
    release.set()
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    assert 5 <= len(manifest_ids(data)) < len(expected)


def test_two_runs_at_once_are_safe(inat: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    expected = make_world(inat, data, observations=100)
    first_downloading, second_done = threading.Event(), threading.Event()

    def hold_photos(host: str, path: str, query: dict[str, str]) -> None:
        if path.startswith("/photos/"):  # the first run is downloading until the second is done
            first_downloading.set()
            second_done.wait(timeout=30)

    inat.on_request = hold_photos
    first = start(inat, data, "--workers", "2")
    assert first_downloading.wait(timeout=30)
    second = start(inat, data)
    _, err = second.communicate(timeout=30)
    second_done.set()
    assert second.returncode == 1
    assert err.strip() == (
        f"Error: another inatdl (pid {first.pid}) is using {data}; wait for it to finish, "
        "or use another --data-dir"
    )
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert files(data) == expected
    gets = [r.path for r in inat.photo_requests()]
    assert len(gets) == len(set(gets)) == len(expected)


def test_interrupted_paging_goes_on_from_the_cursor(inat: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    expected = make_world(inat, data, observations=700)  # 4 pages a taxon
    inat.throttle(after=2, every=1, retry_after="1", target="observations")  # page 3 never comes
    result = run(inat, data, "photos", "fetch", "--size", "small")
    assert result.exit_code == 1
    assert "could not get" in result.stderr and "HTTP 429" in result.stderr
    assert len(manifest_ids(data)) == 400  # what the two pages listed was still downloaded
    inat.clear_faults()
    inat.clear_requests()
    result = run(inat, data, "photos", "fetch", "--size", "small")
    assert result.exit_code == 0, result.output
    pages = [(r.query["taxon_id"], r.query["id_above"]) for r in inat.requests_to("/v1/observations")]
    assert pages[0] == ("10,20", "1399")
    assert len(pages) == 5  # the 1,000 observations left, 200 a page, both taxa in one query
    assert files(data) == expected
    assert len(inat.photo_requests()) == len(expected) - 400


def test_leftovers_of_a_crash_are_cleaned_and_finished_files_trusted(
    inat: InatServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    expected = make_world(inat, data, observations=5)
    assert run(inat, data, "photos", "fetch", "--size", "small", "--dry-run").exit_code == 0
    folder = data / "photos" / "Lythrum_salicaria"
    folder.mkdir(parents=True)
    (folder / "10000_small.jpg.part").write_bytes(b"\xff\xd8\xff half a photo")
    (folder / "10010_small.jpg").write_bytes(expected["photos/Lythrum_salicaria/10010_small.jpg"])
    inat.clear_requests()
    assert run(inat, data, "photos", "fetch", "--size", "small").exit_code == 0
    assert files(data) == expected
    assert "/photos/10010/small.jpg" not in [r.path for r in inat.photo_requests()]
    assert len(manifest_ids(data)) == 10


def test_photos_on_disk_are_found_again_after_the_state_file_is_moved_away(
    inat: InatServer, tmp_path: Path
) -> None:
    """What the state error says to do ("move it away to start afresh, photos already on
    disk are kept and found again"): the next run lists afresh but downloads nothing."""
    data = tmp_path / "data"
    expected = make_world(inat, data, observations=5)
    assert run(inat, data, *FETCH_SMALL).exit_code == 0
    for name in ("state.sqlite", "state.sqlite-wal", "state.sqlite-shm"):
        (data / name).unlink(missing_ok=True)
    inat.clear_requests()
    result = run(inat, data, *FETCH_SMALL)
    assert result.exit_code == 0, result.output
    assert inat.photo_requests() == []
    assert files(data) == expected
    assert len(manifest_ids(data)) == 10


@pytest.mark.parametrize(
    ("info", "part_length"),
    [
        (lambda url, etag, n: {"url": url + "?moved", "validator": etag, "total": n}, 100),  # another URL
        (lambda url, etag, n: {"url": url, "validator": None, "total": n}, 100),  # nothing for If-Range
        (lambda url, etag, n: {"url": url, "validator": etag, "total": n}, None),  # all of it: not trusted
        (lambda url, etag, n: '{"url": "' + url, 100),  # written in part
    ],
    ids=["other-url", "no-validator", "whole-length", "torn"],
)
def test_a_kept_part_that_cannot_be_resumed_is_fetched_again(
    inat: InatServer, tmp_path: Path, info, part_length: int | None
) -> None:
    """A .part is resumed only when its .part.info names it, at the photo's URL, and it is
    short of its length; otherwise it is fetched whole again, and no leftover remains."""
    data = tmp_path / "data"
    expected = make_world(inat, data, observations=1)
    assert run(inat, data, *FETCH_SMALL, "--dry-run").exit_code == 0
    photo = expected["photos/Lythrum_salicaria/10000_small.jpg"]
    url = inat.photo_url(10000, "small")
    etag = requests.head(url, timeout=5).headers["ETag"]
    folder = data / "photos" / "Lythrum_salicaria"
    folder.mkdir(parents=True)
    (folder / "10000_small.jpg.part").write_bytes(photo[:part_length])
    written = info(url, etag, len(photo))
    (folder / "10000_small.jpg.part.info").write_text(
        written if isinstance(written, str) else json.dumps(written), encoding="utf-8"
    )
    (folder / "10010_small.jpg.part.info.tmp").write_text("{", encoding="utf-8")
    inat.clear_requests()
    assert run(inat, data, *FETCH_SMALL).exit_code == 0
    assert files(data) == expected
    assert [(r.status, r.header("Range")) for r in inat.requests_to("/photos/10000/")] == [(200, None)]


def test_a_kept_part_of_a_photo_now_gone_is_removed(inat: InatServer, tmp_path: Path) -> None:
    """A .part kept for the next run whose photo is then gone (410) is not left behind."""
    data = tmp_path / "data"
    make_world(inat, data, observations=1)
    assert run(inat, data, *FETCH_SMALL, "--dry-run").exit_code == 0
    url = inat.photo_url(10000, "small")
    etag = requests.head(url, timeout=5).headers["ETag"]
    folder = data / "photos" / "Lythrum_salicaria"
    folder.mkdir(parents=True)
    (folder / "10000_small.jpg.part").write_bytes(inat.photo_bytes(10000, "small")[:100])
    info = {"url": url, "validator": etag, "total": len(inat.photo_bytes(10000, "small"))}
    (folder / "10000_small.jpg.part.info").write_text(json.dumps(info), encoding="utf-8")
    inat._photos[10000] = inat._photos[10000]._replace(gone=410)
    result = run(inat, data, *FETCH_SMALL)
    assert result.exit_code == 0, result.output
    assert "1 photo gone from iNaturalist" in result.output
    assert sorted(p.name for p in folder.iterdir()) == []


@pytest.mark.parametrize(
    ("make_state", "message"),
    [
        (
            lambda p: p.write_bytes(b"this is not a database at all, just text\n" * 3),
            "is not an inatdl state file (not SQLite); move it away or use another --data-dir",
        ),
        (
            lambda p: sqlite3.connect(p).execute("CREATE TABLE songs (title TEXT)").connection.commit(),
            "is an SQLite file of another program, not inatdl state",
        ),
        (
            lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x10\x00\x01\x01" + os.urandom(4000)),
            "is damaged",
        ),
    ],
)
def test_a_bad_state_file_is_refused_and_left_alone(
    inat: InatServer, tmp_path: Path, make_state, message: str
) -> None:
    data = tmp_path / "data"
    make_world(inat, data, observations=2)
    state = data / "state.sqlite"
    make_state(state)
    before = state.read_bytes()
    result = run(inat, data, "photos", "fetch")
    assert result.exit_code == 1
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert state.read_bytes() == before
    assert not inat.photo_requests()


def test_state_from_a_newer_version_is_refused(inat: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_world(inat, data, observations=2)
    assert run(inat, data, "photos", "fetch", "--size", "small").exit_code == 0
    with sqlite3.connect(data / "state.sqlite") as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    result = run(inat, data, "photos", "fetch")
    assert result.exit_code == 1
    assert "was written by a newer inatdl (state version 99); upgrade inatdl" in result.stderr


# The byte budget --------------------------------------------------------------------------


def downloaded_bytes(data: Path) -> int:
    return sum(len(content) for content in files(data).values())


def test_hourly_limit_with_no_wait_exits_75_and_holds_across_runs(inat: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    expected = make_world(inat, data, observations=30)  # 60 photos of about 6.5 kB
    limit = 100_000
    clock = FakeClock()
    inat.clock = clock.now
    no_wait = (*FETCH_SMALL, "--hourly-limit", "100kB", "--no-wait", "--workers", "16")
    result = run(inat, data, *no_wait, clock=clock)
    assert result.exit_code == 75, result.output
    assert "Error: the hourly download limit of 100.0 kB is reached; the budget frees up at" in result.stderr
    first = downloaded_bytes(data)
    assert limit - 7_500 < first <= limit
    assert len(manifest_ids(data)) == len(files(data))
    # the same hour, a new run: nothing more is read
    assert run(inat, data, *no_wait, clock=clock).exit_code == 75
    assert downloaded_bytes(data) == first
    # an hour later, the next 100 kB
    clock.advance(3600)
    assert run(inat, data, *no_wait, clock=clock).exit_code == 75
    assert first < downloaded_bytes(data) <= 2 * limit
    # and waiting (the default) finishes the job, sleeping on the clock until bytes age out
    waiting_from = clock.now()
    result = run(inat, data, *FETCH_SMALL, "--hourly-limit", "100kB", "--workers", "16", clock=clock)
    assert result.exit_code == 0, result.output
    assert "hourly limit of 100.0 kB reached; waiting until" in result.stderr
    assert files(data) == expected
    assert clock.now() - waiting_from > 3000  # it waited on the clock for bytes to age out
    # About 195 kB were left; photos of 6.5-7.3 kB fill each 100 kB hour to at least 92.5 kB,
    # so three hours are the most the bytes need (waits end a millisecond after a deadline).
    assert clock.now() - waiting_from <= 3 * 3600 + 1
    sent = [(r.time, r.sent) for r in inat.photo_requests()]  # on the fake clock
    for at, _ in sent:
        assert sum(n for t, n in sent if at - 3600 < t <= at) <= limit


def test_daily_limit_holds(inat: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_world(inat, data, observations=30)
    clock = FakeClock()
    for _ in range(3):
        result = run(
            inat,
            data,
            "photos",
            "fetch",
            "--size",
            "small",
            "--daily-limit",
            "50kB",
            "--no-wait",
            "--workers",
            "8",
            clock=clock,
        )
        assert result.exit_code == 75
        assert "daily download limit of 50.0 kB is reached" in result.stderr
        clock.advance(3600 * 5)
    assert 40_000 < downloaded_bytes(data) <= 50_000


def test_a_photo_that_does_not_fit_is_left_unread(inat: InatServer, tmp_path: Path) -> None:
    """Admission before the request: a 6.5 kB photo is not asked for when less remains,
    and a photo larger than the whole limit stops the run at once (test_photo_host.py)."""
    data = tmp_path / "data"
    make_world(inat, data, observations=1)
    result = run(inat, data, "photos", "fetch", "--size", "small", "--hourly-limit", "10kB", "--no-wait")
    assert result.exit_code == 75
    assert len(files(data)) == 1 and downloaded_bytes(data) <= 10_000
    other = tmp_path / "other"
    write_taxa(other, [(10, "Lythrum salicaria"), (20, "Lythrum × scabrum")])
    result = run(inat, other, "photos", "fetch", "--size", "small", "--hourly-limit", "5kB", "--no-wait")
    assert result.exit_code == 75
    assert "kB, more than the whole hourly limit (5.0 kB)" in result.stderr
    assert downloaded_bytes(other) == 0


def test_unknown_length_is_admitted_by_a_cautious_estimate(inat: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    expected = make_world(inat, data, observations=3)
    inat.add_fault(Fault("no_length", target="photo"))
    result = run(inat, data, "photos", "fetch", "--size", "small")
    assert result.exit_code == 0, result.output
    assert files(data) == expected
    # the estimate is at most the limit: photos of unknown length still fit a small budget
    other = tmp_path / "other"
    write_taxa(other, [(10, "Lythrum salicaria"), (20, "Lythrum × scabrum")])
    result = run(inat, other, "photos", "fetch", "--size", "small", "--hourly-limit", "1MB", "--no-wait")
    assert result.exit_code == 0, result.output
    assert files(other) == expected
    # and under a budget of three photos, the run stops at the limit
    third = tmp_path / "third"
    write_taxa(third, [(10, "Lythrum salicaria")])
    result = run(inat, third, "photos", "fetch", "--size", "small", "--hourly-limit", "20kB", "--no-wait")
    assert result.exit_code == 75
    assert 0 < downloaded_bytes(third) <= 20_000


def test_ctrl_c_while_waiting_for_the_budget_stops_at_once(inat: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_world(inat, data, observations=20)
    child = start(inat, data, "--hourly-limit", "30kB", "--workers", "4")
    wait_for_photos(inat, 4)
    time.sleep(1.0)  # the child is now waiting for the hour to pass
    started = time.monotonic()
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=20)
    assert time.monotonic() - started < 10
    assert child.returncode == 130, err
    assert "hourly limit of 30.0 kB reached; waiting until" in err
    assert "Interrupted: state saved" in err
    assert 0 < len(manifest_ids(data)) <= 5


def test_a_photo_that_does_not_fit_is_not_asked_again_until_it_would(
    inat: InatServer, tmp_path: Path
) -> None:
    """While another download is in flight, a photo that does not fit is only asked its
    size (HEAD), never its body: no GET is sent that the budget has no room for.

    The body of whichever photo is admitted first is held until the other photo has asked
    its size: were it let through at once, the other might only be judged after it ended,
    when its size is known and no HEAD is needed (a loaded machine did that once)."""
    data = tmp_path / "data"
    make_world(inat, data, observations=1)  # photos 10000 and 50000, about 6.4 kB each
    inat.on_request = hold_bodies_until_both_asked(inat)
    child = start(inat, data, "--hourly-limit", "10kB", "--no-wait", "--workers", "2")  # the real clock
    _, err = child.communicate(timeout=60)
    assert child.returncode == 75, err
    asked = sorted([r.method for r in inat.requests_to(f"/photos/{pid}/")] for pid in (10000, 50000))
    assert asked == [["HEAD"], ["HEAD", "GET"]]  # whichever was admitted first
    assert len(files(data)) == 1


def hold_bodies_until_both_asked(inat: InatServer) -> Callable[[str, str, dict[str, str]], None]:
    """An on_request hook: the second request to a photo (its GET, after its HEAD) waits,
    in the server, until two photos have been asked something (an event, not a time)."""
    asked: Counter[str] = Counter()
    lock, both = threading.Lock(), threading.Event()

    def hold(host: str, path: str, query: dict[str, str]) -> None:
        if not path.startswith("/photos/"):
            return
        with lock:
            asked[path] += 1
            again = asked[path] > 1
            if len(asked) >= 2:
                both.set()
        if again:
            both.wait(30)  # a bug that never asks the other photo fails the assertions, late

    return hold
