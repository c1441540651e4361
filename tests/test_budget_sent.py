"""The byte budget as the photo hosts see it: the test server counts the body bytes it
writes to its sockets (read by inatdl or not), and these tests hold inatdl to those counts."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from fakes import FakeClock
from inat_server import Fault, InatServer
from world import fetch_command, files, manifest, run, two_taxa

from inatdl.budget import ByteBudget, WaitCancelled
from inatdl.constants import SPOOL_BYTES
from inatdl.download import Downloader
from inatdl.state import DONE, PENDING, PhotoJob, Store
from inatdl.units import parse_size

HOUR = 3600
MEDIUM = ("photos", "fetch", "--size", "medium", "--workers", "16")
PATIENT = (10.0, 10.0)  # timeouts: a loaded machine must not turn into bodies broken off


def make_world(inat: InatServer, data: Path, observations: int = 150) -> dict[str, bytes]:
    """Two taxa of one-photo observations (medium photos of 12.3-13.8 kB); their files."""
    return two_taxa(inat, data, observations, "medium")


def sent_in_any_hour(inat: InatServer, length: float = HOUR) -> int:
    """The most body bytes the hosts sent within any window of ``length`` (fake clock)."""
    sent = [(r.time, r.sent) for r in inat.photo_requests()]
    return max((sum(n for t, n in sent if at - length < t <= at) for at, _ in sent), default=0)


def ledger_total(data: Path) -> int:
    with sqlite3.connect(data / "state.sqlite") as db:
        return int(db.execute("SELECT COALESCE(SUM(bytes), 0) FROM ledger").fetchone()[0])


def test_hourly_and_daily_limits_hold_for_the_bytes_sent(inat: InatServer, tmp_path: Path) -> None:
    """The issue's runs: a 2 MB hour, the same hour again, then a 3 MB day; no body is
    sent that is not read, so no photo is ever sent whole twice."""
    data = tmp_path / "data"
    expected = make_world(inat, data, observations=200)  # 400 photos, about 5.2 MB
    clock = FakeClock()
    inat.clock = clock.now
    hourly = (*MEDIUM, "--hourly-limit", "2MB", "--no-wait")
    result = run(inat, data, *hourly, clock=clock, timeout=PATIENT)
    assert result.exit_code == 75, result.output
    assert "Error: the hourly download limit of 2.0 MB is reached" in result.stderr
    first = inat.bytes_sent()
    assert 2_000_000 - 4 * 14_000 < first <= 2_000_000  # used, to within a few photos
    assert "Byte budget: the photo hosts sent" in result.stdout
    assert "the last hour holds 2.0 MB of the 2.0 MB hourly limit (100 %)" in result.stdout
    for _ in range(2):  # the same hour: nothing more is sent, not even bodies left unread
        clock.advance(60)
        asked = len(inat.photo_requests())
        assert run(inat, data, *hourly, clock=clock, timeout=PATIENT).exit_code == 75
        assert inat.bytes_sent() <= 2_000_000
        assert len(inat.photo_requests()) == asked  # not even a HEAD: no photo fits the room left
    clock.advance(HOUR)
    daily = (*MEDIUM, "--hourly-limit", "200MB", "--daily-limit", "3MB", "--no-wait")
    result = run(inat, data, *daily, clock=clock, timeout=PATIENT)
    assert result.exit_code == 75, result.output
    assert "daily download limit of 3.0 MB is reached" in result.stderr
    assert 3_000_000 - 4 * 14_000 < inat.bytes_sent() <= 3_000_000
    assert sent_in_any_hour(inat) <= 2_000_000
    assert set(inat.sent_in_full().values()) == {1}
    assert ledger_total(data) >= inat.bytes_sent()
    assert "Over a limit" not in result.stderr
    # waiting, the rest comes as the day frees, and still never more than 3 MB a day
    result = run(
        inat, data, *MEDIUM, "--hourly-limit", "2MB", "--daily-limit", "3MB", clock=clock, timeout=PATIENT
    )
    assert result.exit_code == 0, result.output
    assert files(data) == expected
    assert sent_in_any_hour(inat) <= 2_000_000
    assert sent_in_any_hour(inat, 24 * HOUR) <= 3_000_000
    assert set(inat.sent_in_full().values()) == {1}


def test_cut_bodies_are_resumed_with_range(inat: InatServer, tmp_path: Path) -> None:
    """5 % of bodies cut at half way: the rest is asked with Range and If-Range."""
    data = tmp_path / "data"
    expected = make_world(inat, data, observations=200)
    cut = inat.add_fault(Fault("short", target="photo", rate=0.05, first_attempts=1, seed=3))
    result = run(inat, data, *MEDIUM, timeout=PATIENT)
    assert result.exit_code == 0, result.output
    assert files(data) == expected
    assert cut.hits >= 10
    ranged = [r for r in inat.photo_requests() if r.header("Range")]
    assert len(ranged) == cut.hits
    assert all(r.status == 206 and r.header("If-Range", "").startswith('"') for r in ranged)
    kept = sum(len(content) for content in expected.values())
    assert inat.bytes_sent() / kept <= 1.01
    assert inat.bytes_sent() <= ledger_total(data) <= inat.bytes_sent() * 1.01


def test_a_body_that_changed_is_fetched_again_whole(inat: InatServer, tmp_path: Path) -> None:
    """If-Range no longer matches: the host answers 200, and the part kept is dropped."""
    data = tmp_path / "data"
    make_world(inat, data, observations=1)

    def change_the_photo() -> None:
        inat.photo_lengths[10000] = 20_000  # a new ETag

    inat.add_fault(Fault("short", target="photo", times=1, path_contains="/10000/", then=change_the_photo))
    result = run(inat, data, *MEDIUM, timeout=PATIENT)
    assert result.exit_code == 0, result.output
    assert files(data)["photos/Lythrum_salicaria/10000_medium.jpg"] == inat.photo_bytes(10000, "medium")
    assert [r.status for r in inat.requests_to("/photos/10000/")] == [200, 200]


@pytest.mark.parametrize(
    "fault",
    [
        Fault("reset_mid_body", target="photo", rate=0.3, first_attempts=1),
        Fault("short", target="photo", rate=0.3, first_attempts=1),
        Fault("status", target="photo", status=503, rate=0.3, first_attempts=1),
        Fault("drip", target="photo", rate=0.1, first_attempts=1, delay=0.001, chunk_size=4096),
    ],
    ids=lambda fault: fault.name,
)
def test_every_byte_a_host_sent_is_in_the_ledger(inat: InatServer, tmp_path: Path, fault: Fault) -> None:
    """Bodies cut, reset (what came may be lost on the way) or left unread (an error page)
    are counted at least as the hosts sent them, and not much more."""
    data = tmp_path / "data"
    expected = make_world(inat, data, observations=40)
    inat.ranges = fault.kind != "short"  # a short body is then fetched again from byte 0
    inat.add_fault(fault)
    result = run(inat, data, *MEDIUM, timeout=PATIENT)
    assert result.exit_code == 0, result.output
    assert files(data) == expected
    assert fault.hits > 0
    sent = inat.bytes_sent()
    assert sent <= ledger_total(data) <= sent * 1.2


def test_a_photo_larger_than_its_estimate_near_the_limit(inat: InatServer, tmp_path: Path) -> None:
    """Near the limit the size is asked with HEAD: a photo five times the others' size is
    not requested when it would not fit, and comes once the window frees."""
    data = tmp_path / "data"
    make_world(inat, data, observations=10)
    clock = FakeClock()
    one_worker = ("photos", "fetch", "--size", "medium", "--workers", "1")
    result = run(inat, data, *one_worker, "--max-per-taxon", "8", clock=clock, timeout=PATIENT)
    assert result.exit_code == 0, result.output  # the state now knows 16 photos' sizes
    inat.photo_lengths[10080] = 65_000  # the next photo
    limit = inat.bytes_sent() + 60_000
    result = run(
        inat, data, *one_worker, "--hourly-limit", f"{limit}B", "--no-wait", clock=clock, timeout=PATIENT
    )
    assert result.exit_code == 75, result.output
    assert [r.method for r in inat.requests_to("/photos/10080/")] == ["HEAD"]
    assert inat.bytes_sent() <= limit
    assert "Over a limit" not in result.stderr
    clock.advance(HOUR)
    result = run(
        inat, data, *one_worker, "--hourly-limit", f"{limit}B", "--no-wait", clock=clock, timeout=PATIENT
    )
    assert result.exit_code == 0, result.output
    assert files(data)["photos/Lythrum_salicaria/10080_medium.jpg"] == inat.photo_bytes(10080, "medium")
    assert set(inat.sent_in_full().values()) == {1}


def test_a_new_run_judges_sizes_from_the_state(inat: InatServer, tmp_path: Path) -> None:
    """The photos downloaded before give the estimate: with room for 70 photos, none is
    asked with HEAD (the cautious default for a size never downloaded, 600 kB, would)."""
    data = tmp_path / "data"
    make_world(inat, data, observations=30)
    clock = FakeClock()
    result = run(inat, data, *MEDIUM, "--max-per-taxon", "10", clock=clock, timeout=PATIENT)
    assert result.exit_code == 0, result.output
    inat.clear_requests()
    limit = 20 * 14_000 + 1_000_000
    result = run(
        inat, data, *MEDIUM, "--hourly-limit", f"{limit}B", "--no-wait", clock=clock, timeout=PATIENT
    )
    assert result.exit_code == 0, result.output
    assert len(inat.photo_requests()) == 40
    assert all(r.method == "GET" for r in inat.photo_requests())


def test_a_body_larger_than_announced_room_is_counted_and_told(inat: InatServer, tmp_path: Path) -> None:
    """When a body turns out larger than its reservation and the window has no room for the
    difference, it is read (its host sends it anyway), counted, and said."""
    data = tmp_path / "data"
    make_world(inat, data, observations=1)
    inat.add_fault(Fault("no_length", target="photo"))  # not even HEAD tells the length
    inat.photo_lengths[10000] = 300_000
    result = run(
        inat, data, *MEDIUM, "--hourly-limit", "100kB", "--no-wait", "--workers", "1", timeout=PATIENT
    )
    assert "Over a limit: photo 10000 (of unknown length) was" in result.stderr
    assert "the hourly window had no room left" in result.stderr
    assert ledger_total(data) >= inat.bytes_sent() > 100_000


def test_ctrl_c_ends_a_wait_for_the_budget(tmp_path: Path) -> None:
    """A worker waiting for the window to free wakes at Ctrl-C (the run's cancel event),
    without the hour passing; the test waits at most 4 s, under the 5 s grace."""

    class EventClock(FakeClock):
        def wait(self, event: threading.Event, seconds: float) -> bool:
            if event.wait(4.0):
                return True
            self.advance(seconds)  # not woken: the time passes
            return False

    clock = EventClock()
    cancel = threading.Event()
    store = Store(tmp_path / "state.sqlite", clock)
    budget = ByteBudget(store, clock, 1000, 10_000, wait=True, cancel=cancel)
    budget.settle(budget.admit(1000), 1000)
    outcome: list[object] = []

    def worker() -> None:
        try:
            outcome.append(budget.admit(500))
        except WaitCancelled as exc:
            outcome.append(exc)

    waiting = threading.Thread(target=worker)
    waiting.start()
    cancel.set()  # what Ctrl-C does
    waiting.join(timeout=4.5)
    assert not waiting.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], WaitCancelled)
    assert clock.now() - 1_700_000_000 < HOUR


def test_a_slow_body_stops_at_ctrl_c(inat: InatServer, tmp_path: Path) -> None:
    """The stop is looked at between the pieces of a slow body: a photo that would take
    10 s to arrive is dropped (and counted) within the 5 s grace, not read to its end."""
    make_world(inat, tmp_path, observations=1)
    inat.add_fault(Fault("drip", target="photo", delay=0.1, chunk_size=128))  # 100 pieces
    clock = FakeClock()
    stop = threading.Event()
    store = Store(tmp_path / "state.sqlite", clock)
    budget = ByteBudget(store, clock, 10**9, 10**9, cancel=stop)
    downloader = Downloader(requests.Session(), tmp_path, budget, clock, stop, timeout=(2.0, 2.0))
    job = PhotoJob(10000, "medium", inat.photo_url(10000, "medium"), "photos/x/10000_medium.jpg", 10)
    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.append(downloader.download(job).status))
    worker.start()
    while not inat.photo_requests() or inat.photo_requests()[0].sent < 512:
        assert worker.is_alive()
        threading.Event().wait(0.01)
    stop.set()  # what Ctrl-C does
    worker.join(timeout=4.0)
    assert outcome == [PENDING]
    assert DONE not in outcome and not (tmp_path / job.path).exists()
    part = (tmp_path / job.path).with_name("10000_medium.jpg.part")  # kept for the next run
    assert inat.photo_bytes(10000, "medium").startswith(part.read_bytes())
    assert part.with_name(part.name + ".info").is_file()
    budget.close()
    assert ledger_total(tmp_path) >= inat.bytes_sent()


def test_a_large_body_is_written_as_it_comes_not_held_in_memory(inat: InatServer, tmp_path: Path) -> None:
    """A young body is held in memory to be written in one go, but never more than
    SPOOL_BYTES of it: a large photo still arriving is on disk but for that much."""
    make_world(inat, tmp_path, observations=1)
    inat.photo_lengths[10000] = 3 * SPOOL_BYTES
    held_after = 2 * SPOOL_BYTES  # then the host holds the rest until it stops
    inat.add_fault(Fault("drip", target="photo", delay=0.0, chunk_size=64 * 1024, hold_after=held_after))
    clock = FakeClock()
    store = Store(tmp_path / "state.sqlite", clock)
    budget = ByteBudget(store, clock, 10**9, 10**9)
    stop = threading.Event()
    # Never "slow" (no .part.info yet) nor timed out here: only its size can get it written.
    timeout, not_slow = (2.0, 60.0), 3600.0
    downloader = Downloader(
        requests.Session(), tmp_path, budget, clock, stop, timeout, part_info_after=not_slow
    )
    job = PhotoJob(10000, "medium", inat.photo_url(10000, "medium"), "photos/x/10000_medium.jpg", 10)
    threading.Thread(target=downloader.download, args=(job,), daemon=True).start()  # ends with the host
    part = (tmp_path / job.path).with_name("10000_medium.jpg.part")
    deadline = time.monotonic() + 15
    while not part.is_file() or part.stat().st_size < held_after - SPOOL_BYTES:
        assert time.monotonic() < deadline, "a large body is held in memory whole"
        time.sleep(0.01)
    assert inat.photo_bytes(10000, "medium").startswith(part.read_bytes())
    stop.set()  # the download ends as soon as the host lets go


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_a_body_cut_by_a_stop_is_resumed_by_the_next_run(
    inat: InatServer, tmp_path: Path, stop: signal.Signals
) -> None:
    """A run stopped in the middle of a slow body keeps its .part with the ETag it came
    with; the next run asks for the rest with Range and If-Range, so the host sends the
    photo's bytes once in all, and the ledger counts at least all it sent."""
    data = tmp_path / "data"
    expected = make_world(inat, data, observations=1)
    photo = inat.photo_bytes(10000, "medium")
    inat.add_fault(Fault("drip", target="photo", path_contains="/10000/", delay=0.05, chunk_size=256))
    child = subprocess.Popen(
        fetch_command(inat, data, "--size", "medium"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while sum(r.sent for r in inat.requests_to("/photos/10000/")) < len(photo) // 2:
        assert time.monotonic() < deadline and child.poll() is None, "the slow body never got going"
        time.sleep(0.01)
    child.send_signal(stop)
    _, err = child.communicate(timeout=30)
    assert child.returncode == (-signal.SIGKILL if stop == signal.SIGKILL else 130), err
    first = sum(r.sent for r in inat.requests_to("/photos/10000/"))
    assert first < len(photo)  # stopped in the middle of the body
    assert not (data / "photos/Lythrum_salicaria/10000_medium.jpg").exists()
    inat.clear_faults()
    result = run(inat, data, *MEDIUM, timeout=PATIENT)
    assert result.exit_code == 0, result.output
    assert files(data) == expected
    asked = inat.requests_to("/photos/10000/")
    assert [(r.status, r.header("If-Range", "")[:1]) for r in asked[1:]] == [(206, '"')]
    assert asked[1].header("Range", "").startswith("bytes=")
    # what the first run got before the stop (half the photo or more) is not sent again:
    # only the few pieces still on their way (in the sockets) when it stopped
    assert len(photo) <= sum(r.sent for r in asked) <= len(photo) + len(photo) // 4
    assert ledger_total(data) >= inat.bytes_sent()
    assert not [p for p in (data / "photos").rglob("*") if ".part" in p.name]


def test_every_byte_read_before_a_sigkill_is_kept(inat: InatServer, tmp_path: Path) -> None:
    """The .part is written as the body comes, not held in a buffer: killed while its host
    holds the rest of a slow body (its .part.info written, as it has been coming for more
    than PART_INFO_AFTER), the next run asks for exactly what the .part lacks."""
    data = tmp_path / "data"
    expected = make_world(inat, data, observations=1)
    photo = inat.photo_bytes(10000, "medium")
    half = len(photo) // 2 // 256 * 256 + 256  # not a multiple of a write buffer's size
    drip = Fault("drip", target="photo", path_contains="/10000/", delay=0.04, chunk_size=256, hold_after=half)
    inat.add_fault(drip)
    command = fetch_command(inat, data, "--size", "medium")
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = data / "photos/Lythrum_salicaria/10000_medium.jpg.part"
    deadline = time.monotonic() + 20
    info = part.with_name(part.name + ".info")
    while not info.is_file() or part.stat().st_size < half:
        assert time.monotonic() < deadline and child.poll() is None, "what came is not in the .part"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    inat.clear_faults()
    result = run(inat, data, *MEDIUM, timeout=PATIENT)
    assert result.exit_code == 0, result.output
    assert files(data) == expected
    asked = inat.requests_to("/photos/10000/")
    assert [r.header("Range") for r in asked] == [None, f"bytes={half}-"]
    assert sum(r.sent for r in asked) == len(photo)
    assert ledger_total(data) >= inat.bytes_sent()


def test_ctrl_c_waits_for_the_bodies_in_flight_to_be_counted(inat: InatServer, tmp_path: Path) -> None:
    """Ctrl-C stops a slow body, and the run waits for its worker to drop and count it
    before it saves the state and says what the hosts sent: a worker still reading when
    the process ends would leave both short (Python 3.11's Thread.is_alive says False
    after a join that Ctrl-C interrupted, though the thread runs on)."""
    data = tmp_path / "data"
    make_world(inat, data, observations=1)
    photo = inat.photo_bytes(10000, "medium")
    inat.add_fault(Fault("drip", target="photo", path_contains="/10000/", delay=0.05, chunk_size=256))
    command = fetch_command(inat, data, "--size", "medium")
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while sum(r.sent for r in inat.requests_to("/photos/10000/")) < len(photo) // 2:
        assert time.monotonic() < deadline and child.poll() is None, "the slow body never got going"
        time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 130, err
    said = re.search(r"the photo hosts sent (\S+ \S+) in this run", out)
    assert said is not None, out
    assert parse_size(said.group(1).replace(" ", "")) >= inat.bytes_sent() * 0.99  # (rounded to 3 digits)


def test_a_body_of_unknown_length_is_read_up_to_the_cap_of_its_size(inat: InatServer, tmp_path: Path) -> None:
    """A body without Content-Length is reserved step by step as it comes: a 1.5 MB square
    photo is under the 2 MB a square can be, so it is read whole (not refused half way)."""
    data = tmp_path / "data"
    make_world(inat, data, observations=1)
    inat.add_fault(Fault("no_length", target="photo"))
    inat.photo_lengths[10000] = 1_500_000
    result = run(inat, data, "photos", "fetch", "--size", "square", timeout=PATIENT)
    assert result.exit_code == 0, result.output
    assert files(data)["photos/Lythrum_salicaria/10000_square.jpg"] == inat.photo_bytes(10000, "square")
    assert ledger_total(data) >= inat.bytes_sent()


def test_the_bodies_of_redirects_are_counted(inat: InatServer, tmp_path: Path) -> None:
    """A photo host that redirects sends a page with the redirect: its bytes count too."""
    data = tmp_path / "data"
    make_world(inat, data, observations=1)
    page = "<html><body>Moved to <a href='elsewhere'>elsewhere</a></body></html>" * 40
    target = inat.photo_url(10000, "medium")
    inat.add_fault(
        Fault("redirect", target="photo", path_contains="/10000/", times=1, location=target, body=page)
    )
    result = run(inat, data, *MEDIUM, timeout=PATIENT)
    assert result.exit_code == 0, result.output
    assert [r.status for r in inat.requests_to("/photos/10000/")] == [302, 200]
    assert (
        ledger_total(data)
        >= inat.bytes_sent()
        == len(page) + sum(len(content) for content in files(data).values())
    )


def test_an_error_page_larger_than_the_room_is_told(inat: InatServer, tmp_path: Path) -> None:
    """An error page is sent whole whether or not it is read: when it is larger than the
    room reserved for the photo and the window has none left, that is said, not silent."""
    data = tmp_path / "data"
    make_world(inat, data, observations=1)
    page = "<html><body>Service Unavailable</body></html>" + " " * 80_000
    inat.add_fault(Fault("status", target="photo", status=503, body=page, path_contains="/10000/"))
    result = run(
        inat, data, *MEDIUM, "--hourly-limit", "50kB", "--no-wait", "--workers", "1", timeout=PATIENT
    )
    assert inat.bytes_sent() > 50_000  # the host sent its page, read or not
    assert ledger_total(data) >= inat.bytes_sent()
    assert "Over a limit: photo 10000 was" in result.stderr


def test_at_a_full_window_photos_complete_on_disk_are_still_recorded(
    inat: InatServer, tmp_path: Path
) -> None:
    """A kill loses the last batch of records: those photos are complete on disk, pending in
    the state, not in photos.csv. A --no-wait run at a full window records them (they cost no
    byte) even behind a photo it has no room for, so photos.csv and an export have them
    without waiting an hour."""
    data = tmp_path / "data"
    make_world(inat, data, observations=150)
    clock = FakeClock()
    inat.clock = clock.now
    hourly = ("photos", "fetch", "--size", "medium", "--hourly-limit", "1MB", "--no-wait")
    assert run(inat, data, *hourly, "--workers", "16", clock=clock, timeout=PATIENT).exit_code == 75
    with sqlite3.connect(data / "state.sqlite") as db:
        done = [
            path
            for (path,) in db.execute("SELECT path FROM photos WHERE status=? ORDER BY photo_id", (DONE,))
        ]
        # the first photo deleted (it needs bytes again), the next forty's records lost by a
        # kill (a batch is up to 200): more than the workers' queue holds, so some are handed
        # on only after the run has stopped at the limit
        assert len(done) > 41
        (data / done[0]).unlink()
        db.executemany(
            "UPDATE photos SET status=?, bytes=NULL WHERE path=?", [(PENDING, p) for p in done[1:41]]
        )
    inat.clear_requests()

    result = run(inat, data, *hourly, "--workers", "1", clock=clock, timeout=PATIENT)

    assert result.exit_code == 75, result.output
    assert not inat.photo_requests()
    assert sorted(r["path"] for r in manifest(data)) == done[1:]
    assert sorted(p.relative_to(data).as_posix() for p in (data / "photos").rglob("*.jpg")) == done[1:]
