"""Live progress: the bars of `photos fetch` (or a log line every few seconds when stderr
is not a terminal) with their totals, and the byte bar of each `opendata sync` table."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import click
from tqdm import tqdm

from inatdl.output.console import Output, photos
from inatdl.state import DONE, FAILED, GONE, Outcome
from inatdl.units import format_size

log = logging.getLogger("inatdl")
LOG_EVERY_SECONDS = 10.0


class JobEstimate:
    """The job's photos and bytes as far as they are known, for the bars' totals.

    Photos: those listed for download (retries of earlier runs, then each page's, told
    before they wait for room in the workers' queue), plus the observation pages left (from
    the API's total_results) at the photos each page has brought so far; so the bar does not
    read 95 % with one page of eight done, and once no page is left it is exactly the job's.
    Bytes: those received, plus the photos not finished yet at the bytes a finished photo
    has cost so far (none until a photo has finished).
    Finished photos are counted under the summary's columns (new, had, failed, gone); a
    download dropped at a stop is not finished but left, as the summary counts it.
    """

    def __init__(self) -> None:
        self.listed = 0  # photos to download: retries of earlier runs, then those of each page
        self.from_pages = 0  # of which listed by the pages walked in this run
        self.paging = False  # pages are walked: what is listed from now on comes from them
        self.pages = self.pages_left = 0
        self.finished = self.bytes = 0
        self.ended: Counter[str] = Counter()  # finished photos by the summary's column
        self._lock = threading.Lock()

    def paged(self, done: int, left: int) -> None:
        with self._lock:
            self.pages, self.pages_left, self.paging = done, left, True

    def add(self, count: int) -> None:
        with self._lock:
            self.listed += count
            self.from_pages += count if self.paging else 0

    def finish(self, outcome: Outcome) -> bool:
        """Count ``outcome``; False when the photo is not finished (dropped at a stop)."""
        column = _COLUMNS.get(outcome.status)
        if column == "new" and outcome.already_there:
            column = "had"
        if column is None:
            return False
        with self._lock:
            self.finished += 1
            self.ended[column] += 1
            self.bytes += outcome.bytes if column == "new" else 0
        return True

    def photos(self) -> int:
        with self._lock:
            if not self.pages:
                return self.listed
            return self.listed + round(self.pages_left * self.from_pages / self.pages)

    def total_bytes(self) -> int | None:
        photos = self.photos()
        with self._lock:
            if not self.finished:
                return None
            return self.bytes + round(max(0, photos - self.finished) * self.bytes / self.finished)


_COLUMNS = {DONE: "new", FAILED: "failed", GONE: "gone"}  # the summary's, of a finished photo
_PHOTOS_TO_DOWNLOAD = "photos to download"


class TqdmReporter:
    """Two bars, photos and bytes, with rate and ETA; the taxon being paged as a prefix. In a
    dry run, one bar: the photos listed to download, as they are listed."""

    def __init__(self, dry_run: bool = False) -> None:
        self.taxon = ""
        self.job = JobEstimate()
        self.dry_run = dry_run
        self.photos = tqdm(
            total=None if dry_run else 0,
            unit="photo",
            desc=_PHOTOS_TO_DOWNLOAD if dry_run else "photos",
            position=0,
            dynamic_ncols=True,
        )
        self.bytes = tqdm(
            total=None,
            unit="B",
            unit_scale=True,
            unit_divisor=1000,
            desc="bytes",
            position=1,
            dynamic_ncols=True,
            disable=dry_run,  # nothing is downloaded
        )

    def listing(self, taxon: str) -> None:
        self.taxon = taxon
        self.photos.set_description_str(f"{self._desc} (paging {taxon})")

    def listing_open_data(self, taxa: int) -> None:
        self.photos.set_description_str(f"{self._desc} (listing the open data's, {taxa} taxa)")

    @property
    def _desc(self) -> str:
        return _PHOTOS_TO_DOWNLOAD if self.dry_run else "photos"

    def paged(self, done: int, left: int) -> None:
        """Observation pages of the whole job: done, and done and left together."""
        self.job.paged(done, left)
        if not self.dry_run:
            self.photos.total = self.job.photos()
        self.photos.set_description_str(f"{self._desc} (paging {self.taxon}: {done}/{done + left} pages)")

    def listed(self, count: int) -> None:
        self.job.add(count)
        if self.dry_run:
            self.photos.update(count)
            return
        self.photos.total = self.job.photos()
        self.photos.refresh()

    def finished(self, outcome: Outcome) -> None:
        if not self.job.finish(outcome):
            return
        self.bytes.total = self.job.total_bytes()
        self.photos.update(1)
        if outcome.status == DONE and not outcome.already_there:
            self.bytes.update(outcome.bytes)

    def waiting(self, message: str) -> None:
        self.photos.write(message, file=sys.stderr)

    def close(self) -> None:
        self.photos.set_description_str(self._desc)
        self.photos.close()
        self.bytes.close()


class LogReporter:
    """For a stderr that is not a terminal (a log file, CI): a line every few seconds, and
    at the end what the run did in the summary's words (a dry run: what it would do)."""

    def __init__(self, dry_run: bool = False) -> None:
        self.job = JobEstimate()
        self.dry_run = dry_run
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def listing(self, taxon: str) -> None:
        log.info("paging the observations of %s", taxon)

    def listing_open_data(self, taxa: int) -> None:
        log.info("listing the photos of %s from the open data", _taxa(taxa))

    def paged(self, done: int, left: int) -> None:
        self.job.paged(done, left)

    def listed(self, count: int) -> None:
        self.job.add(count)

    def finished(self, outcome: Outcome) -> None:
        self.job.finish(outcome)
        with self._lock:
            if time.monotonic() - self._last >= LOG_EVERY_SECONDS:
                self._last = time.monotonic()
                self._line()

    def _line(self) -> None:
        job = self.job
        pages = f"; {job.pages} observation pages done, {job.pages_left} left" if job.pages_left else ""
        about = "about " if job.pages_left else ""
        log.info(
            "%d of %s%d photos handled, %s downloaded%s",
            job.finished,
            about,
            job.photos(),
            format_size(job.bytes),
            pages,
        )

    def waiting(self, message: str) -> None:
        log.warning("%s", message)

    def close(self) -> None:
        job = self.job
        if not job.listed:
            return
        if self.dry_run:
            log.info("%s to download (dry run: nothing downloaded)", photos(job.listed))
            return
        ended = [
            f"{job.ended[c]} {c}" for c in ("new", "had", "failed", "gone") if job.ended[c] or c == "new"
        ]
        left = job.listed - job.finished
        log.info(
            "%s to download: %s, %d left; %s downloaded",
            photos(job.listed),
            ", ".join(ended),
            left,
            format_size(job.bytes),
        )


def fetch_reporter(out: Output, dry_run: bool = False) -> TqdmReporter | LogReporter | None:
    """Bars on a terminal, a log line every few seconds otherwise, nothing under --quiet."""
    if out.quiet:
        return None
    return TqdmReporter(dry_run) if sys.stderr.isatty() else LogReporter(dry_run)


def _taxa(count: int) -> str:
    return "1 taxon" if count == 1 else f"{count} taxa"


class SyncProgress:
    """A byte bar per table on a terminal, a line per table otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None

    def say(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)

    def table(self, table: str, total: int | None, already: int) -> Callable[[int], None]:
        self.done()
        if self.quiet:
            return lambda count: None
        self.bar = tqdm(
            total=total, initial=already, unit="B", unit_scale=True, unit_divisor=1000,
            desc=f"{table}.csv.gz", dynamic_ncols=True, disable=None,
        )  # fmt: skip
        if not sys.stderr.isatty():
            resumed = f", resuming at {format_size(already)}" if already else ""
            click.echo(f"Downloading {table}.csv.gz ({format_size(total or 0)}{resumed})", err=True)
        return self.bar.update  # type: ignore[no-any-return]

    def done(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
