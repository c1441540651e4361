"""Time, read through one object so tests can replace it and never wait."""

from __future__ import annotations

import threading
import time


class Clock:
    """Wall time for the byte ledger, a monotonic one for pacing, and sleep."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early when ``event`` is set; True if it was."""
        return event.wait(max(0.0, seconds))
