"""Progress for `photos fetch`: tqdm bars on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import threading
import time

from tqdm import tqdm

from inatdl.state import DONE, Outcome
from inatdl.units import format_size

log = logging.getLogger("inatdl")
LOG_EVERY_SECONDS = 10.0


class TqdmReporter:
    """Two bars, photos and bytes, with rate and ETA; the taxon being paged as a prefix."""

    def __init__(self) -> None:
        self.taxon = ""
        self.photos = tqdm(total=0, unit="photo", desc="photos", position=0, dynamic_ncols=True)
        self.bytes = tqdm(
            total=None,
            unit="B",
            unit_scale=True,
            unit_divisor=1000,
            desc="bytes",
            position=1,
            dynamic_ncols=True,
        )

    def listing(self, taxon: str) -> None:
        self.taxon = taxon
        self.photos.set_description_str(f"photos (paging {taxon})")

    def paged(self, done: int, left: int) -> None:
        """Observation pages of the whole job: done, and done and left together."""
        self.photos.set_description_str(f"photos (paging {self.taxon}: {done}/{done + left} pages)")

    def queued(self, count: int) -> None:
        self.photos.total = (self.photos.total or 0) + count
        self.photos.refresh()

    def finished(self, outcome: Outcome) -> None:
        self.photos.update(1)
        if outcome.status == DONE and not outcome.already_there:
            self.bytes.update(outcome.bytes)

    def waiting(self, message: str) -> None:
        self.photos.write(message, file=sys.stderr)

    def close(self) -> None:
        self.photos.set_description_str("photos")
        self.photos.close()
        self.bytes.close()


class LogReporter:
    """For a stderr that is not a terminal (a log file, CI): a line every few seconds."""

    def __init__(self) -> None:
        self.total = self.done = self.bytes = 0
        self.pages = self.pages_left = 0
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def listing(self, taxon: str) -> None:
        log.info("paging the observations of %s", taxon)

    def paged(self, done: int, left: int) -> None:
        with self._lock:
            self.pages, self.pages_left = done, left

    def queued(self, count: int) -> None:
        with self._lock:
            self.total += count

    def finished(self, outcome: Outcome) -> None:
        with self._lock:
            self.done += 1
            if outcome.status == DONE and not outcome.already_there:
                self.bytes += outcome.bytes
            if time.monotonic() - self._last >= LOG_EVERY_SECONDS:
                self._last = time.monotonic()
                self._line()

    def _line(self) -> None:
        pages = f"; {self.pages} observation pages done, {self.pages_left} left" if self.pages_left else ""
        log.info(
            "%d of %d photos handled, %s downloaded%s", self.done, self.total, format_size(self.bytes), pages
        )

    def waiting(self, message: str) -> None:
        log.warning("%s", message)

    def close(self) -> None:
        if self.total:
            self._line()
