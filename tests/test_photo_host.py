"""The photo hosts behaving as the API does (Retry-After, failures in a row), and byte
limits too small for a single photo: what the user sees, and what the hosts were asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeClock
from inat_server import Fault, InatServer, http_date
from requests.structures import CaseInsensitiveDict
from world import files, run, two_taxa

from inatdl.download import FAIL, READ_BODY, RECORD_GONE, RETRY, response_action
from inatdl.parts import Partial
from inatdl.units import format_size

SMALL = "--size", "small"
LIMIT = "more than the whole hourly limit (5.0 kB): no wait makes room for it; raise --hourly-limit"


def too_small(expected: dict[str, bytes]) -> set[str]:
    """The line a fetch of these photos under a 5 kB limit may end with: it names the size of
    the photo it met first."""
    return {f"Error: a small photo is {format_size(len(photo))}, {LIMIT}" for photo in expected.values()}


def photo_gets(inat: InatServer) -> list[str]:
    return [r.path for r in inat.photo_requests() if r.method == "GET"]


# Limits that cannot hold one photo ------------------------------------------------------------


@pytest.mark.parametrize("wait", [(), ("--no-wait",)], ids=["wait", "no-wait"])
def test_a_limit_smaller_than_a_photo_stops_at_once_in_one_line(
    inat: InatServer, tmp_path: Path, wait: tuple[str, ...]
) -> None:
    """Issue 22 items 1-2: no wait of an hour, no line a photo, no advice to run again."""
    data = tmp_path / "data"
    expected = two_taxa(inat, data, 10, "small")
    clock = FakeClock()
    started = clock.now()
    result = run(inat, data, "photos", "fetch", *SMALL, "--hourly-limit", "5kB", *wait, clock=clock)
    assert result.exit_code == 75
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and errors[0] in too_small(expected)
    assert "Failed in" not in result.stderr and "run the same command again" not in result.stderr
    assert "waiting until" not in result.stderr
    assert clock.now() - started < 60
    assert photo_gets(inat) == [] and files(data) == {}  # its size asked with HEAD, no body sent


def test_a_photo_announced_larger_than_the_limit_is_left_unread(inat: InatServer, tmp_path: Path) -> None:
    """A host that answers no HEAD: the GET's Content-Length says it, and the run stops
    there rather than read a body that no limit holds."""
    data = tmp_path / "data"
    expected = two_taxa(inat, data, 10, "small")
    inat.add_fault(Fault("status", target="photo", status=405, times=1))  # the HEAD
    result = run(inat, data, "photos", "fetch", *SMALL, "--hourly-limit", "5kB", "--workers", "1")
    assert result.exit_code == 75
    assert result.stderr.splitlines()[-1] in too_small(expected) and "Failed in" not in result.stderr
    assert len(photo_gets(inat)) == 1
    assert files(data) == {}


def test_a_limit_smaller_than_the_photos_downloaded_before_asks_no_host(
    inat: InatServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    two_taxa(inat, data, 3, "small")
    assert run(inat, data, "photos", "fetch", *SMALL).exit_code == 0
    next(data.glob("photos/*/*.jpg")).unlink()  # to be fetched again
    inat.clear_requests()
    clock = FakeClock()
    started = clock.now()
    result = run(inat, data, "photos", "fetch", *SMALL, "--hourly-limit", "5kB", clock=clock)
    assert result.exit_code == 75, result.output
    assert "Error: every small photo downloaded so far was at least 6." in result.stderr
    assert "more than the whole hourly limit (5.0 kB)" in result.stderr
    assert inat.photo_requests() == [] and clock.now() - started < 60


def test_a_limit_already_spent_on_another_size_stops_at_once_not_after_an_hour(
    inat: InatServer, tmp_path: Path
) -> None:
    """A rerun with a small limit while the last hour already holds more than it (an earlier
    run of another size): the photo's own size is asked, and a photo larger than the whole
    limit stops the run at once, rather than after an hour's wait for a room that never fits."""
    data = tmp_path / "data"
    expected = two_taxa(inat, data, 3, "small")
    assert run(inat, data, "photos", "fetch", "--size", "square").exit_code == 0
    inat.clear_requests()
    clock = FakeClock()
    started = clock.now()
    result = run(inat, data, "photos", "fetch", *SMALL, "--hourly-limit", "5kB", clock=clock)
    assert result.exit_code == 75, result.output
    assert "waiting until" not in result.stderr
    assert result.stderr.splitlines()[-1] in too_small(expected)
    assert clock.now() - started < 60 and photo_gets(inat) == []  # its size asked with HEAD


@pytest.mark.parametrize("wait", [(), ("--no-wait",)], ids=["wait", "no-wait"])
@pytest.mark.parametrize("next_photo", [None, 4_000], ids=["larger-than-the-limit", "fits-the-limit"])
def test_sizes_seen_mostly_over_a_spent_limit_ask_the_photos_own_size(
    inat: InatServer, tmp_path: Path, wait: tuple[str, ...], next_photo: int | None
) -> None:
    """The small photos seen are mostly larger than a 5 kB limit (one of 3 kB), and the last
    hour already holds more than it: the next photo is judged by its HEAD, not by the
    estimate capped at the limit. Larger than the limit: exit 75 at once, saying its size,
    with or without --no-wait. Within it: exit 75 under --no-wait, else a wait for its own
    length (not the whole limit), then the download, with no overrun."""
    data = tmp_path / "data"
    expected = two_taxa(inat, data, 10, "small")
    inat.photo_lengths[10000] = 3_000
    one_worker = ("photos", "fetch", *SMALL, "--workers", "1")
    clock = FakeClock()
    assert run(inat, data, *one_worker, "--max-per-taxon", "3", clock=clock).exit_code == 0
    if next_photo is not None:
        inat.photo_lengths[10030] = next_photo
    inat.clear_requests()
    started = clock.now()
    result = run(inat, data, *one_worker, "--hourly-limit", "5kB", *wait, clock=clock)
    assert result.exit_code == 75, result.output
    heads = [r.path for r in inat.photo_requests() if r.method == "HEAD"]
    error = result.stderr.splitlines()[-1]
    if next_photo is None:
        assert heads == ["/photos/10030/small.jpg"] and photo_gets(inat) == []
        size = format_size(len(expected["photos/Lythrum_salicaria/10030_small.jpg"]))
        assert error == f"Error: a small photo is {size}, {LIMIT}"
        assert "waiting until" not in result.stderr and clock.now() - started < 60
    elif wait:
        assert heads == ["/photos/10030/small.jpg"] and photo_gets(inat) == []
        assert error.startswith("Error: the hourly download limit of 5.0 kB is reached; the budget frees up")
    else:  # waited for the 4 kB to fit, then the next photo is larger than the limit
        assert "waiting until" in result.stderr
        assert photo_gets(inat) == ["/photos/10030/small.jpg"]
        assert heads == ["/photos/10030/small.jpg", "/photos/10040/small.jpg"]
        assert files(data)["photos/Lythrum_salicaria/10030_small.jpg"] == inat.photo_bytes(10030, "small")
        assert error.startswith("Error: a small photo is ") and error.endswith(LIMIT)
        assert "Over a limit" not in result.stderr
        assert clock.now() - started < 3600 + 60  # one wait, for the bytes of the earlier run


# The photo hosts as the API: Retry-After, failures in a row -----------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_a_photo_hosts_retry_after_is_honoured(inat: InatServer, tmp_path: Path, status: int) -> None:
    """Issue 22's planted bug: a photo asking for 20 s was retried in under 1 s."""
    data = tmp_path / "data"
    expected = two_taxa(inat, data, 2, "small")
    asked = "/photos/10000/small.jpg"
    fault = inat.add_fault(
        Fault("status", target="photo", status=status, retry_after="20", path_contains=asked, times=1)
    )
    clock = FakeClock()
    started = clock.now()
    result = run(inat, data, "photos", "fetch", *SMALL, clock=clock)
    assert result.exit_code == 0, result.output
    assert files(data) == expected
    assert fault.hits == 1 and photo_gets(inat).count(asked) == 2
    assert clock.now() - started >= 20


def test_a_photo_failing_four_times_in_a_row_backs_off_then_completes(
    inat: InatServer, tmp_path: Path
) -> None:
    """As the API's: each retry waits longer than the one before (1, 2, 4, 8 s, half of
    each at random), and the fifth attempt's photo is kept."""
    data = tmp_path / "data"
    expected = two_taxa(inat, data, 1, "small")
    asked = "/photos/10000/small.jpg"
    inat.add_fault(Fault("status", target="photo", status=502, path_contains=asked, times=4))
    clock = FakeClock()
    result = run(inat, data, "photos", "fetch", *SMALL, clock=clock)
    assert result.exit_code == 0, result.output
    assert files(data) == expected
    assert photo_gets(inat).count(asked) == 5
    waits = [s for s in clock.sleeps if s >= 0.5]  # the API's pacing waits less: 1 request/s
    assert any(4 <= s <= 8 for s in waits)  # the fourth retry's: half of 8 s fixed, half random


@pytest.mark.parametrize("kind", ["reset", "reset_mid_body", "short"])
def test_a_photo_cut_or_reset_four_times_in_a_row_completes(
    inat: InatServer, tmp_path: Path, kind: str
) -> None:
    data = tmp_path / "data"
    expected = two_taxa(inat, data, 1, "small")
    asked = "/photos/10000/small.jpg"
    inat.add_fault(Fault(kind, target="photo", path_contains=asked, times=4))
    result = run(inat, data, "photos", "fetch", *SMALL)
    assert result.exit_code == 0, result.output
    assert files(data) == expected
    gets = [r for r in inat.photo_requests() if r.method == "GET" and r.path == asked]
    assert len(gets) == 5
    # each cut body resumed where it stopped, not sent again from its first byte (3 times as much)
    assert sum(r.sent for r in gets) < 1.5 * len(expected["photos/Lythrum_salicaria/10000_small.jpg"])
    assert not list(data.rglob("*.part*"))


# response_action: the status table --------------------------------------------------------


def headers(**values: str) -> CaseInsensitiveDict[str]:
    return CaseInsensitiveDict({name.replace("_", "-"): value for name, value in values.items()})


JPEG = headers(content_type="image/jpeg")
KEPT = Partial("x.part", "u", offset=100, total=300, validator='"e"')

ACTIONS = [
    # status, headers, what the .part holds, verb, restart, problem, retry_after
    (200, JPEG, Partial("x.part", "u"), READ_BODY, True, "", None),
    (200, JPEG, KEPT, READ_BODY, True, "", None),
    (
        206,
        headers(content_type="image/jpeg", content_range="bytes 100-299/300"),
        KEPT,
        READ_BODY,
        False,
        "",
        None,
    ),
    (206, headers(content_range="bytes 0-299/300"), KEPT, RETRY, True, "another part", None),
    (206, headers(content_range="bytes 100-399/400"), KEPT, RETRY, True, "another part", None),
    (206, headers(content_range="bytes 0-9/10"), Partial("x.part", "u"), RETRY, True, "another part", None),
    (416, JPEG, KEPT, RETRY, True, "HTTP 416", None),
    (404, JPEG, KEPT, RECORD_GONE, False, "HTTP 404", None),
    (410, headers(), Partial("x.part", "u"), RECORD_GONE, False, "HTTP 410", None),
    (429, headers(retry_after="20"), KEPT, RETRY, False, "HTTP 429", 20.0),
    (503, headers(Retry_After="7"), KEPT, RETRY, False, "HTTP 503", 7.0),
    (500, headers(retry_after="soon"), KEPT, RETRY, False, "HTTP 500", None),
    (502, headers(), KEPT, RETRY, False, "HTTP 502", None),
    (403, JPEG, KEPT, FAIL, False, "HTTP 403", None),
    (204, JPEG, KEPT, FAIL, False, "HTTP 204", None),
    (200, headers(content_type="text/html; charset=utf-8"), KEPT, RETRY, True, "got text/html instead", None),
    (200, headers(content_type="application/json"), KEPT, RETRY, True, "got application/json", None),
    (
        206,
        headers(content_type="text/plain", content_range="bytes 100-299/300"),
        KEPT,
        RETRY,
        False,
        "got text/plain",
        None,
    ),
]


@pytest.mark.parametrize("status, given, partial, verb, restart, problem, retry_after", ACTIONS)
def test_response_action(
    status: int,
    given: CaseInsensitiveDict[str],
    partial: Partial,
    verb: str,
    restart: bool,
    problem: str,
    retry_after: float | None,
) -> None:
    action = response_action(status, given, partial)
    assert (action.verb, action.restart, action.retry_after) == (verb, restart, retry_after)
    assert problem in action.problem


def test_response_action_reads_retry_after_as_a_date() -> None:
    action = response_action(503, headers(retry_after=http_date(30)), KEPT)
    assert action.verb == RETRY and action.retry_after == pytest.approx(30, abs=2)
