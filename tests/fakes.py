"""Test doubles: a virtual clock that is right under threads and never waits for real."""

from __future__ import annotations

import threading
import time
from collections import Counter

from inatdl.clock import Clock

QUANTUM = 0.01  # real seconds without a clock event before virtual time moves
EVENT_POLL = 0.005  # real seconds between looks at the event of a wait()


class FakeClock(Clock):
    """Virtual time: it moves only when threads sleep on it (or a test advances it).

    Each sleeping thread waits for its own deadline. Time jumps to the earliest deadline
    pending, once ``quantum`` real seconds have passed with no thread starting a sleep,
    waking from one, or advancing the clock: so sleeps that overlap overlap in virtual
    time too (16 workers sleeping 0.25 s at once move it 0.25 s, not 4 s), a sleep ends
    exactly at its deadline, sleepers wake in deadline order, and time never goes back.
    A thread doing real work (HTTP, disk) while others sleep sees time pass in steps of
    their sleeps, as it would on a real clock; no thread's verdict waits on real time
    beyond a quantum a sleep. ``wait`` returns as soon as its event is set.
    """

    def __init__(self, start: float = 1_700_000_000.0, quantum: float = QUANTUM) -> None:
        self._now = start
        self._quantum = quantum
        self._changed = threading.Condition()
        self._pending: Counter[float] = Counter()  # deadlines of the threads asleep
        self._last_event = time.monotonic()  # real time of the last start, wake or advance
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._changed:
            return self._now

    def monotonic(self) -> float:
        return self.now()

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds, None)

    def advance(self, seconds: float) -> None:
        with self._changed:
            self._now += seconds
            self._event()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        return self._sleep(seconds, event)

    def _event(self) -> None:
        self._last_event = time.monotonic()
        self._changed.notify_all()

    def _sleep(self, seconds: float, event: threading.Event | None) -> bool:
        """Block until virtual time reaches now + ``seconds`` or ``event`` is set."""
        with self._changed:
            self.sleeps.append(seconds)
            if seconds <= 0:
                return event is not None and event.is_set()
            deadline = self._now + seconds
            self._pending[deadline] += 1
            self._event()
            try:
                while True:
                    if event is not None and event.is_set():
                        return True
                    if self._now >= deadline:
                        return event is not None and event.is_set()
                    quiet = time.monotonic() - self._last_event
                    if quiet >= self._quantum and deadline == min(self._pending):
                        self._now = deadline  # the earliest sleeper moves time to its deadline
                        self._event()
                        continue
                    pause = max(self._quantum - quiet, self._quantum / 4)
                    self._changed.wait(pause if event is None else min(pause, EVENT_POLL))
            finally:
                self._pending[deadline] -= 1
                if not self._pending[deadline]:
                    del self._pending[deadline]
