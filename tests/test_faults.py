"""The fault matrix: network, API, photo hosts, disk and hostile data, over real HTTP."""

from __future__ import annotations

import contextlib
import errno
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fakes import FakeClock
from inat_server import Fault, InatServer, http_date
from requests.adapters import HTTPAdapter
from test_budget_sent import ledger_total
from world import ALATUM_PHOTOS, SALICARIA_PHOTOS, expected_files, files, manifest_ids, run

import inatdl.parts
from inatdl.observations import SKIP_URL, choose_photo
from inatdl.state import Store

# The API ------------------------------------------------------------------------------------

API_FAULTS = [
    Fault("status", status=429),
    Fault("status", status=429, retry_after="4"),
    Fault("status", status=500),
    Fault("status", status=502),
    Fault("status", status=503),
    Fault("status", status=504),
    Fault("reset"),
    Fault("reset_mid_body"),
    Fault("short"),
    Fault("badjson"),
    Fault("html"),
    Fault("empty"),
    Fault("latency", delay=1.5),  # longer than the read timeout of these runs
]


@pytest.mark.parametrize("fault", API_FAULTS, ids=lambda f: f.name)
def test_api_fault_on_first_attempts_is_retried(world: InatServer, tmp_path: Path, fault: Fault) -> None:
    fault.target, fault.first_attempts = "observations", 2
    world.add_fault(fault)
    clock = FakeClock()
    result = run(world, tmp_path / "data", "photos", "fetch", clock=clock, timeout=(1.0, 0.5))
    assert result.exit_code == 0, result.output
    assert files(tmp_path / "data") == expected_files(world)
    assert fault.hits == 2  # one query for both taxa, two failed attempts
    if fault.kind != "latency":  # a slow answer is recorded only when the server wakes
        assert len(world.requests_to("/v1/observations")) == 3
    if fault.retry_after:
        assert sum(1 for s in clock.sleeps if s >= 4) >= 2


def test_retry_after_as_an_http_date_is_honoured(world: InatServer, tmp_path: Path) -> None:
    world.add_fault(Fault("status", target="observations", status=429, retry_after=http_date(30), times=1))
    clock = FakeClock()
    result = run(world, tmp_path / "data", "photos", "fetch", clock=clock)
    assert result.exit_code == 0, result.output
    assert any(25 <= s <= 31 for s in clock.sleeps)


def test_an_api_that_never_recovers_stops_with_one_line(world: InatServer, tmp_path: Path) -> None:
    world.add_fault(Fault("status", target="observations", status=503))
    clock = FakeClock()
    result = run(world, tmp_path / "data", "photos", "fetch", clock=clock)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("Error: could not get http://127.0.0.1:")
    assert "after 7 attempts: HTTP 503; check your connection and --api-url" in result.stderr
    assert "Traceback" not in result.stderr
    assert 30 < sum(clock.sleeps) <= 120


def test_the_window_error_is_reported_not_retried(world: InatServer, tmp_path: Path) -> None:
    world.add_fault(
        Fault(
            "status",
            target="observations",
            status=403,
            body=json.dumps({"error": "Result window is too large", "status": 403}),
        )
    )
    result = run(world, tmp_path / "data", "photos", "fetch")
    assert result.exit_code == 1
    assert 'answered HTTP 403: {"error": "Result window is too large"' in result.stderr
    assert len(world.requests_to("/v1/observations")) == 1


def test_connection_refused(world: InatServer, tmp_path: Path) -> None:
    clock = FakeClock()
    from click.testing import CliRunner

    from inatdl.cli import cli

    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(tmp_path / "data"), "--api-url", "http://127.0.0.1:9/v1", "photos", "fetch"],
        obj={"clock": clock, "timeout": (1.0, 1.0)},
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith(
        "Error: could not get http://127.0.0.1:9/v1/observations?"
    )
    assert "after 7 attempts: connection refused" in result.stderr


@pytest.mark.parametrize(
    "payload",
    [
        {"total_results": 3},  # no results at all
        {"results": None},
        {"total_results": 1, "results": [{"id": 1}]},  # an observation with nothing in it
        {
            "total_results": 2,
            "results": [
                {
                    "id": 7,
                    "taxon": None,
                    "user": None,
                    "photos": [{"id": 70, "license_code": "cc0", "url": None}],
                },
                {
                    "id": 8,
                    "photos": [
                        {"id": "x"},
                        {"id": 80, "license_code": 5, "url": "http://h/photos/80/square.jpg"},
                        {"id": 81, "license_code": "cc0", "url": "javascript:alert(1)"},
                    ],
                    "geojson": {"coordinates": "nowhere"},
                    "location": "north",
                },
            ],
        },
        {"total_results": 1, "results": [{"id": "seven", "photos": [{"id": 75, "license_code": "cc0"}]}]},
        ["not", "an", "object"],
    ],
)
def test_odd_api_json_is_survived_and_loses_nothing(world: InatServer, tmp_path: Path, payload: Any) -> None:
    """A page in a shape the API should never give: no traceback, nothing from it
    downloaded, and the next run, on good pages, finishes the job."""
    world.add_fault(Fault("status", target="observations", status=200, body=json.dumps(payload), times=1))
    data = tmp_path / "data"
    result = run(world, data, "photos", "fetch")
    assert "Traceback" not in result.output and "unexpected" not in result.output
    assert result.exit_code == 0, result.output
    expected = expected_files(world)
    assert set(files(data)) <= set(expected)
    assert {r.path for r in world.photo_requests()} <= {
        f"/photos/{p.split('/')[-1].split('_')[0]}/medium.{p.rsplit('.', 1)[1]}" for p in expected
    } | {"/photos/1400/medium.jpg"}
    assert run(world, data, "photos", "fetch").exit_code == 0
    assert files(data) == expected
    assert sorted(manifest_ids(data)) == sorted(p.split("/")[-1].split("_")[0] for p in expected)


# The photo hosts ------------------------------------------------------------------------------


PHOTO_FAULTS = [
    Fault("status", status=500),
    Fault("status", status=502),
    Fault("status", status=503, retry_after="2"),
    Fault("status", status=504),
    Fault("status", status=429, retry_after="3"),
    Fault("reset"),
    Fault("reset_mid_body"),
    Fault("short"),
    Fault("html"),
    Fault("empty"),
    Fault("latency", delay=1.5),
]


@pytest.mark.parametrize("fault", PHOTO_FAULTS, ids=lambda f: f.name)
def test_photo_fault_on_first_attempt_is_retried_and_never_saved(
    world: InatServer, tmp_path: Path, fault: Fault
) -> None:
    fault.target, fault.first_attempts = "photo", 1
    world.add_fault(fault)
    result = run(world, tmp_path / "data", "photos", "fetch", "--workers", "8", timeout=(1.0, 0.5))
    assert result.exit_code == 0, result.output
    assert files(tmp_path / "data") == expected_files(world)
    wanted = len(SALICARIA_PHOTOS) + len(ALATUM_PHOTOS) + 1  # + the gone one, which answers 410 second
    if fault.kind != "latency":
        # each twice, no more (a 410 cut short is still a 410: the gone photo may be asked once)
        assert 2 * wanted - 1 <= len(world.photo_requests()) <= 2 * wanted
    assert not list((tmp_path / "data").rglob("*.part"))


def test_slow_drip_and_unknown_length_still_complete(world: InatServer, tmp_path: Path) -> None:
    world.add_fault(Fault("drip", target="photo", delay=0.01, chunk_size=4096, times=4))
    world.add_fault(Fault("no_length", target="photo", times=4))
    result = run(world, tmp_path / "data", "photos", "fetch")
    assert result.exit_code == 0, result.output
    assert files(tmp_path / "data") == expected_files(world)


def test_endless_body_is_cut_at_the_cap_and_reported(world: InatServer, tmp_path: Path) -> None:
    world.add_fault(Fault("endless", target="photo", path_contains="/photos/2000/"))
    result = run(world, tmp_path / "data", "photos", "fetch", "--size", "square")
    assert result.exit_code == 1
    assert "1 × the body is larger than 2000000 bytes, more than a photo can be" in result.stderr
    assert len(world.requests_to("/photos/2000/")) == 1  # not retried: it would be endless again
    assert "photos/Lythrum_alatum/2000_square.jpeg" not in files(tmp_path / "data")


@pytest.mark.parametrize("location", ["ftp://127.0.0.1/photos/2000/square.jpeg", "file:///etc/passwd"])
def test_redirect_to_another_scheme_is_refused(world: InatServer, tmp_path: Path, location: str) -> None:
    world.add_fault(Fault("redirect", target="photo", path_contains="/photos/2000/", location=location))
    result = run(world, tmp_path / "data", "photos", "fetch")
    assert result.exit_code == 1
    assert "unusable URL or redirect" in result.stderr
    assert len(world.requests_to("/photos/2000/")) == 1


@pytest.mark.parametrize("location", ["http://[::1/photos/2000/square.jpeg", "/\u00e9.jpeg"])
def test_a_redirect_to_no_url_fails_that_photo_not_the_run(
    world: InatServer, tmp_path: Path, location: str
) -> None:
    """A Location that is not a URL (bad IPv6 brackets, bytes that are not UTF-8) is that
    photo's failure: the run goes on with the others."""
    world.add_fault(Fault("redirect", target="photo", path_contains="/photos/2000/", location=location))
    result = run(world, tmp_path / "data", "photos", "fetch")
    assert result.exit_code == 1
    assert "unusable URL or redirect" in result.stderr
    assert "unexpected" not in result.stderr
    assert len(world.requests_to("/photos/2000/")) == 1
    assert files(tmp_path / "data") == {k: v for k, v in expected_files(world).items() if "/2000_" not in k}


def test_a_redirect_with_an_empty_location_is_an_http_error(world: InatServer, tmp_path: Path) -> None:
    """As requests has it: an empty Location is not followed; the photo fails with its status."""
    world.add_fault(Fault("redirect", target="photo", path_contains="/photos/2000/", location=" "))
    result = run(world, tmp_path / "data", "photos", "fetch")
    assert result.exit_code == 1
    assert "HTTP 302" in result.stderr
    assert len(world.requests_to("/photos/2000/")) == 1


def test_redirect_loop_is_refused(world: InatServer, tmp_path: Path) -> None:
    url = world.photo_url(2000, "medium")
    world.add_fault(Fault("redirect", target="photo", path_contains="/photos/2000/", location=url))
    result = run(world, tmp_path / "data", "photos", "fetch")
    assert result.exit_code == 1
    assert len(world.requests_to("/photos/2000/")) == 6  # the first and 5 redirects, once


def test_mixed_faults_everywhere(world: InatServer, tmp_path: Path) -> None:
    """10% of photo first attempts 5xx, 5% reset, 5% cut short, 30% of API first attempts
    failing, and an API that throttles: every photo arrives whole, with backoff."""
    for i in range(40):
        world.add_observation(300 + i, 61299, photos=[{"id": 3000 + i, "license_code": "cc-by"}])
    world.add_fault(Fault("status", target="photo", status=503, first_attempts=1, rate=0.10, seed=1))
    world.add_fault(Fault("reset", target="photo", first_attempts=1, rate=0.05, seed=2))
    world.add_fault(Fault("short", target="photo", first_attempts=1, rate=0.05, seed=3))
    world.add_fault(Fault("status", target="api", status=502, first_attempts=1, rate=0.30, seed=4))
    world.throttle(after=2, every=3, retry_after="2")
    clock = FakeClock()
    result = run(world, tmp_path / "data", "photos", "fetch", "--workers", "16", clock=clock)
    assert result.exit_code == 0, result.output
    expected = expected_files(world)
    expected.update(
        {
            f"photos/Lythrum_salicaria/{3000 + i}_medium.jpg": world.photo_bytes(3000 + i, "medium")
            for i in range(40)
        }
    )
    assert files(tmp_path / "data") == expected
    throttled = [r for r in world.requests if r.fault == "throttle"]
    assert len(throttled) <= 3
    assert sum(1 for s in clock.sleeps if s >= 2) >= len(throttled)  # Retry-After honoured each time
    assert len(set(manifest_ids(tmp_path / "data"))) == len(expected)


# The disk -------------------------------------------------------------------------------------


class _FillingDisk:
    """open() for the download module whose files fail with ENOSPC once ``room`` bytes are written."""

    def __init__(self, room: int) -> None:
        self.room = room

    def __call__(self, path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = open(path, mode, *args, **kwargs)  # noqa: SIM115
        disk = self
        original_write = handle.write

        def write(data: bytes) -> int:
            if disk.room < len(data):
                raise OSError(errno.ENOSPC, "No space left on device")
            disk.room -= len(data)
            return original_write(data)

        handle.write = write
        return handle


def test_full_disk_stops_with_one_line_and_resumes(
    world: InatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setattr(inatdl.parts, "open", _FillingDisk(100_000), raising=False)
    result = run(world, data, "photos", "fetch", "--workers", "1")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("Error: the disk holding")
    assert (
        "is full; free some space and run the same command again (nothing done so far is lost)"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    saved = files(data)
    assert 0 < len(saved) < len(expected_files(world)) and not list(data.rglob("*.part"))
    assert sorted(manifest_ids(data)) == sorted(p.split("/")[-1].split("_")[0] for p in saved)
    monkeypatch.undo()
    world.clear_requests()
    assert run(world, data, "photos", "fetch").exit_code == 0
    assert files(data) == expected_files(world)
    assert len(world.photo_requests()) == len(expected_files(world)) - len(saved) + 1  # + the gone one


def test_data_dir_that_is_a_file(world: InatServer, tmp_path: Path) -> None:
    target = tmp_path / "plain-file"
    target.write_text("x")
    for command in (["photos", "fetch"], ["taxa", "resolve", str(tmp_path / "species.csv")]):
        result = run(world, target, *command)
        assert result.exit_code == 1
        assert (
            result.stderr
            == f"Error: the data dir {target} is a file, not a folder; choose another with --data-dir\n"
        )
    result = run(world, target / "inside", "photos", "fetch")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


# Hostile data ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://static.inaturalist.org/photos/1/square.exe?1",
        "https://static.inaturalist.org/photos/1/square",
        "https://static.inaturalist.org/photos/1/thumbnail.jpg",
        "file:///etc/photos/1/square.jpg",
        "javascript:alert(1)//square.jpg",
        "https://static.inaturalist.org/photos/1/square.jpg/../../passwd",
        "",
    ],
)
def test_odd_photo_urls_are_skipped(url: str) -> None:
    photo = {"id": 1, "license_code": "cc0", "url": url}
    assert choose_photo(photo, ("cc0",), "medium").skip == SKIP_URL


def test_every_request_verifies_tls(
    world: InatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a request is (API page, photo GET, HEAD for the estimate), it reaches the
    transport with certificate checks on: a verify=False anywhere would show here."""
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)
    sent: list[tuple[str, object]] = []
    original = HTTPAdapter.send

    def send(self: HTTPAdapter, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        sent.append((request.method or "", kwargs.get("verify")))
        return original(self, request, **kwargs)

    monkeypatch.setattr(HTTPAdapter, "send", send)
    data = tmp_path / "data"
    assert run(world, data, "photos", "fetch", "--dry-run").exit_code == 0
    assert run(world, data, "photos", "fetch").exit_code == 0
    assert files(data) == expected_files(world)
    assert {method for method, _ in sent} == {"GET", "HEAD"}
    assert {verify for _, verify in sent} == {True}


def test_a_full_disk_under_the_state_file_stops_the_run_and_loses_nothing(
    world: InatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite reports a full disk while a worker records a photo: the run stops with the
    library's one line naming the state file, and the next run finishes without fetching
    again the photos whose files were complete."""
    original = Store.record
    recorded: list[object] = []

    def record_on_a_full_disk(self: Store, outcome: Any) -> None:
        recorded.append(outcome)
        if len(recorded) == 5:
            with self.transaction():
                raise sqlite3.OperationalError("database or disk is full")
        original(self, outcome)

    monkeypatch.setattr(Store, "record", record_on_a_full_disk)
    data = tmp_path / "data"
    result = run(world, data, "photos", "fetch", "--workers", "2")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: the disk holding {data / 'state.sqlite'} is full; free some space and run the "
        "same command again (nothing done so far is lost)"
    )
    assert "Traceback" not in result.stderr
    saved = {path for path in files(data) if ".part" not in path}  # complete photos only, not .part(.info)
    assert 4 <= len(saved) < len(expected_files(world))
    monkeypatch.undo()
    world.clear_requests()
    assert run(world, data, "photos", "fetch").exit_code == 0
    assert files(data) == expected_files(world)
    fetched_again = {r.path.split("/")[2] for r in world.photo_requests()}
    assert not fetched_again & {path.split("/")[-1].split("_")[0] for path in saved}


def test_a_disk_that_stays_full_under_the_state_file_leaves_no_reservation_counted_as_sent(
    world: InatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every write of the state fails from the fifth photo on, as on a disk that stays
    full: the budget's lease (written as spent, 50 MB, before its bytes came) cannot be
    closed then, and the next runs counted all of it as sent. They count what the hosts
    sent."""
    original_transaction, original_record = Store.transaction, Store.record
    recorded: list[object] = []

    def record(self: Store, outcome: Any) -> None:
        recorded.append(outcome)
        original_record(self, outcome)

    @contextlib.contextmanager
    def transaction(self: Store) -> Iterator[None]:
        with original_transaction(self):
            if len(recorded) >= 5:
                raise sqlite3.OperationalError("database or disk is full")
            yield

    monkeypatch.setattr(Store, "record", record)
    monkeypatch.setattr(Store, "transaction", transaction)
    data = tmp_path / "data"
    result = run(world, data, "photos", "fetch", "--workers", "2")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith(
        f"Error: the disk holding {data / 'state.sqlite'} is full"
    )
    monkeypatch.undo()
    assert run(world, data, "photos", "fetch").exit_code == 0
    assert files(data) == expected_files(world)
    assert world.bytes_sent() <= ledger_total(data) < world.bytes_sent() + 50_000  # not 50 MB more
    assert (data / "state.sqlite-lease").read_bytes().strip() == b""  # settled once


def test_a_long_retry_after_is_honoured_not_given_up(world: InatServer, tmp_path: Path) -> None:
    world.add_fault(Fault("status", target="observations", status=429, retry_after="300", times=1))
    clock = FakeClock()
    result = run(world, tmp_path / "data", "photos", "fetch", clock=clock)
    assert result.exit_code == 0, result.output
    assert max(clock.sleeps) >= 300


def test_any_5xx_is_retried(world: InatServer, tmp_path: Path) -> None:
    world.add_fault(Fault("status", target="observations", status=520, first_attempts=1))
    world.add_fault(Fault("status", target="photo", status=501, first_attempts=1))
    result = run(world, tmp_path / "data", "photos", "fetch")
    assert result.exit_code == 0, result.output
    assert files(tmp_path / "data") == expected_files(world)


def test_a_body_of_unknown_length_must_end_as_its_own_format_ends() -> None:
    from inatdl.download import is_whole_image

    jpeg, png, gif = b"\xff\xd8\xff\xe0 head", b"\x89PNG\r\n\x1a\n head", b"GIF89a head"
    assert is_whole_image(jpeg, b"...\xff\xd9", 100) and not is_whole_image(jpeg, b"..cut;", 100)
    assert is_whole_image(png, b"..IEND\xaeB`\x82", 100) and not is_whole_image(png, b"..\xff\xd9", 100)
    assert is_whole_image(gif, b"..;", 100) and not is_whole_image(gif, b"..", 100)
    webp = b"RIFF" + (92).to_bytes(4, "little") + b"WEBPVP8 "
    assert is_whole_image(webp, b"", 100) and not is_whole_image(webp, b"", 60)
