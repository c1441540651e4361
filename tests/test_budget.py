"""The byte budget's window arithmetic, on a fake clock and a real state file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fakes import FakeClock
from hypothesis import given, settings
from hypothesis import strategies as st

from inatdl.budget import ByteBudget, Ticket, budget_hours
from inatdl.errors import LimitReached, LimitTooSmall
from inatdl.state import Store

HOUR = 3600


def make(
    tmp_path: Path,
    clock: FakeClock,
    hourly: int = 1000,
    daily: int = 5000,
    wait: bool = False,
    messages: list[str] | None = None,
) -> tuple[Store, ByteBudget]:
    store = Store(tmp_path / "state.sqlite", clock)
    on_wait = messages.append if messages is not None else None
    return store, ByteBudget(store, clock, hourly, daily, wait=wait, on_wait=on_wait)


def admit(budget: ByteBudget, num_bytes: int, read: int | None = None) -> Ticket:
    """A download as the workers make it: reserve (waiting, or LimitReached), read, settle."""
    while not isinstance(ticket := budget.try_admit(num_bytes), Ticket):
        budget.wait_until(*ticket)
    budget.settle(ticket, num_bytes if read is None else read)
    return ticket


def test_admits_until_the_hourly_limit_then_says_when_it_frees(tmp_path: Path) -> None:
    clock = FakeClock()
    _, budget = make(tmp_path, clock)
    start = clock.now()
    admit(budget, 600)
    clock.advance(600)
    admit(budget, 400)
    assert budget.try_admit(1) == (start + HOUR, "hourly")
    clock.advance(HOUR - 600)  # the first 600 bytes age out
    assert isinstance(budget.try_admit(600), Ticket)
    assert budget.spent("hourly") == 1000
    assert budget.spent("daily") == 1600


def test_bytes_in_flight_count_until_they_settle(tmp_path: Path) -> None:
    """A reservation never ages out while its download lasts, however long."""
    clock = FakeClock()
    _, budget = make(tmp_path, clock)
    ticket = budget.try_admit(900)
    assert isinstance(ticket, Ticket)
    clock.advance(2 * HOUR)
    assert budget.spent("hourly") == 900
    assert not isinstance(budget.try_admit(200), Ticket)
    budget.settle(ticket, 900)
    assert budget.spent("hourly") == 900  # sent now: counted from now


def test_no_wait_raises_limit_reached_with_the_time(tmp_path: Path) -> None:
    clock = FakeClock()
    _, budget = make(tmp_path, clock)
    admit(budget, 1000)
    with pytest.raises(LimitReached, match="hourly download limit of 1.0 kB is reached") as caught:
        admit(budget, 10)
    assert caught.value.until.timestamp() == pytest.approx(clock.now() + HOUR)
    assert caught.value.exit_code == 75


def test_waiting_sleeps_until_bytes_age_out_and_says_so(tmp_path: Path) -> None:
    clock = FakeClock()
    messages: list[str] = []
    _, budget = make(tmp_path, clock, wait=True, messages=messages)
    admit(budget, 900)
    clock.advance(100)
    admit(budget, 500)  # waits for the 900 to age out
    assert sum(clock.sleeps) == pytest.approx(HOUR - 100, abs=0.01)
    assert len(messages) == 1 and "hourly limit of 1.0 kB reached; waiting until" in messages[0]


def test_daily_limit_binds_across_hours(tmp_path: Path) -> None:
    clock = FakeClock()
    _, budget = make(tmp_path, clock, hourly=1000, daily=2500)
    start = clock.now()
    for _ in range(2):
        admit(budget, 1000)
        clock.advance(HOUR)
    admit(budget, 500)
    assert budget.try_admit(600) == (start + 24 * HOUR, "daily")


def test_ledger_survives_runs_and_a_crash_overcounts_only(tmp_path: Path) -> None:
    clock = FakeClock()
    store, budget = make(tmp_path, clock, hourly=100_000, daily=1_000_000)
    admit(budget, 300)
    budget.close()
    store.close()
    store, budget = make(tmp_path, clock, hourly=100_000, daily=1_000_000)
    assert budget.spent("hourly") == 300
    admit(budget, 200)  # opens a lease of 1% of the limit = 1000 bytes, then "crashes"
    store.db.close()
    _, after_crash = make(tmp_path, clock, hourly=100_000, daily=1_000_000)
    assert after_crash.spent("hourly") == 300 + 1000  # the whole lease: never fewer than read


def test_settle_counts_an_overrun_too(tmp_path: Path) -> None:
    clock = FakeClock()
    _, budget = make(tmp_path, clock)
    admit(budget, 500, read=520)
    assert budget.spent("hourly") == 520


def test_settle_counts_what_was_really_read(tmp_path: Path) -> None:
    clock = FakeClock()
    store, budget = make(tmp_path, clock)
    admit(budget, 800, read=300)
    assert budget.spent("hourly") == 300
    clock.advance(HOUR + 1)
    assert budget.spent("hourly") == 0
    budget.close()
    assert store.ledger_since(0) == [(pytest.approx(clock.now() - HOUR - 1), 300)]


def test_no_wait_looks_again_while_a_reservation_may_shrink(tmp_path: Path) -> None:
    """A full budget is not final while an admitted download may still read less."""
    clock = FakeClock()
    _, budget = make(tmp_path, clock)
    ticket = budget.try_admit(1000)
    assert isinstance(ticket, Ticket)
    blocked = budget.try_admit(100)
    assert not isinstance(blocked, Ticket)
    started = clock.now()
    budget.wait_until(*blocked)  # no LimitReached yet: a look again when one settles
    assert clock.now() == started  # waiting for an event, not for time
    budget.settle(ticket, 400)
    assert isinstance(budget.try_admit(100), Ticket)


def test_a_download_larger_than_a_limit_can_never_fit(tmp_path: Path) -> None:
    _, budget = make(tmp_path, FakeClock())
    with pytest.raises(LimitTooSmall, match="more than the whole hourly limit"):
        budget.try_admit(1001)


def test_many_threads_never_exceed_the_limit(tmp_path: Path) -> None:
    clock = FakeClock()
    _, budget = make(tmp_path, clock, hourly=100_000, daily=10**9)
    admitted: list[int] = []

    def worker(seed: int) -> None:
        for i in range(200):
            size = 50 + (seed * 7919 + i * 104729) % 950
            if isinstance(budget.try_admit(size), Ticket):
                admitted.append(size)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 99_000 <= sum(admitted) <= 100_000


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2 * HOUR), st.integers(1, 400)), min_size=1, max_size=40))
def test_window_never_exceeded(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, int]]
) -> None:
    """Whatever the arrivals, the bytes admitted in any hour stay within the limit."""
    tmp = tmp_path_factory.mktemp("budget")
    clock = FakeClock()
    _, budget = make(tmp, clock, hourly=1000, daily=10**9)
    log: list[tuple[float, int]] = []
    for gap, size in steps:
        clock.advance(gap)
        if isinstance(budget.try_admit(size), Ticket):
            log.append((clock.now(), size))
    for at, _ in log:
        assert sum(s for t, s in log if at - HOUR < t <= at) <= 1000


def test_budget_hours() -> None:
    gb = 10**9
    assert budget_hours(3 * gb, 5 * gb, 24 * gb) == pytest.approx(0.6)
    assert budget_hours(30 * gb, 5 * gb, 24 * gb) == pytest.approx(24 + 1.2)  # a day's wait in between


def test_bytes_count_from_when_they_were_read(tmp_path: Path) -> None:
    """A body admitted at 10:00 and still read until 10:50 counts until 11:50."""
    clock = FakeClock()
    _, budget = make(tmp_path, clock)
    ticket = budget.try_admit(800)
    assert isinstance(ticket, Ticket)
    clock.advance(3000)
    budget.settle(ticket, 800)
    clock.advance(700)  # an hour after the admission, 700 s after the reading
    assert budget.spent("hourly") == 800
    clock.advance(2901)
    assert budget.spent("hourly") == 0
