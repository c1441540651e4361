"""The fake clock the other tests trust: virtual time that is right under threads."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

from fakes import FakeClock


def run_threads(*targets: Callable[[], None]) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a sleeper never woke"


def test_concurrent_sleeps_overlap_instead_of_adding_up() -> None:
    clock = FakeClock(quantum=0.2)  # wide enough for 16 threads to all be asleep first
    start = clock.now()
    barrier = threading.Barrier(16)
    woke: list[float] = []

    def worker() -> None:
        barrier.wait()
        clock.sleep(0.25)
        woke.append(clock.now() - start)

    run_threads(*[worker] * 16)
    assert woke == [0.25] * 16
    assert clock.now() - start == 0.25
    assert clock.sleeps == [0.25] * 16


def test_each_sleeper_wakes_at_its_own_deadline_in_order() -> None:
    """Each nap ends exactly at its own deadline, whatever the other thread's naps.

    Asserted from when each nap began, not from a fixed schedule: on a loaded machine a
    thread may be descheduled between two naps for longer than a quantum, and the other
    sleeper then rightly moves time on in between (as a real clock would).
    """
    clock = FakeClock()
    start = clock.now()
    naps: list[tuple[str, float, float, float]] = []  # name, began, nap, woke
    lock = threading.Lock()

    def sleeper(name: str, lengths: list[float]) -> None:
        for nap in lengths:
            began = clock.now() - start
            clock.sleep(nap)
            with lock:
                naps.append((name, began, nap, clock.now() - start))

    run_threads(lambda: sleeper("long", [10.0]), lambda: sleeper("short", [3.0, 3.0, 3.0, 3.0]))
    woke = [w for *_, w in naps]
    assert [(name, began + nap) for name, began, nap, _ in naps] == [(name, w) for name, *_, w in naps]
    shorts = [(began, w) for name, began, _, w in naps if name == "short"]
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(shorts))  # never back
    assert ("long", 0.0, 10.0, 10.0) in naps
    assert [name for name, *_ in naps].count("short") == 4
    assert clock.now() - start == max(woke)


def test_wait_returns_when_the_event_is_set_without_moving_time() -> None:
    clock = FakeClock(quantum=60)  # time would not move by itself within this test
    start = clock.now()
    stop = threading.Event()
    results: list[bool] = []

    def waiter() -> None:
        results.append(clock.wait(stop, 3600))

    thread = threading.Thread(target=waiter)
    thread.start()
    stop.set()
    thread.join(timeout=10)
    assert results == [True]
    assert clock.now() == start
    assert clock.wait(stop, 10) is True and clock.now() == start


def test_wait_times_out_at_the_deadline() -> None:
    clock = FakeClock()
    start = clock.now()
    assert clock.wait(threading.Event(), 7.5) is False
    assert clock.now() - start == 7.5
    assert clock.sleeps == [7.5]


def test_advance_wakes_the_sleepers_it_passes() -> None:
    clock = FakeClock(quantum=60)  # time would not move by itself within this test
    start = clock.now()
    woke: list[float] = []
    asleep = threading.Event()

    def sleeper() -> None:
        asleep.set()
        clock.sleep(100)
        woke.append(clock.now() - start)

    thread = threading.Thread(target=sleeper)
    thread.start()
    asleep.wait()
    clock.advance(150)
    thread.join(timeout=10)
    assert not thread.is_alive() and woke == [150.0]


def test_zero_and_negative_sleeps_return_at_once() -> None:
    clock = FakeClock(quantum=60)
    start = clock.now()
    clock.sleep(0)
    clock.sleep(-1)
    assert clock.now() == start and clock.sleeps == [0, -1]
