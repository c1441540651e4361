"""What a run of `photos fetch` did, per taxon and in all: the data the summary is printed
from (output/photos.py) and the exit code decided on.

The outcomes of this run are counted as the workers report them (:class:`Tally`); the
rest comes from the state at the end (:meth:`TaxonReport.settle`), so that the columns add
up however the run ended.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from inatdl.budget import ByteBudget
from inatdl.errors import InatdlError
from inatdl.state import DONE, FAILED, GONE, PENDING, Outcome


@dataclass
class TaxonReport:
    """What one taxon's photos are at the end of a run (at its size, under its filters).

    The columns add up on every run, whether it ended, was interrupted or was a dry run:
    ``listed == had + downloaded + failed + gone + sum(skipped) + left``.

    - listed: the photos of the taxon that this job knows of: those in the state (any
      status but gone before this run) and those the filters refused
    - had: downloaded before this run (found complete on disk this run included)
    - downloaded: downloaded by this run ("new")
    - failed, gone: failed after their retries, or gone (404/410), in this run
    - skipped: refused by the filters (licence, placeholder...), by reason, whichever
      run listed them (a dry run's included)
    - left: listed but not finished in this run: not downloaded yet (a dry run, a stop,
      the cap) or failed in an earlier run and not retried
    """

    taxon_id: int
    name: str
    size: str = ""  # the photo size these counts are of (a run may fetch several)
    listed: int = 0
    queued: int = 0  # handed to the workers this run (a dry run: what a real run would download)
    had: int = 0
    downloaded: int = 0
    bytes: int = 0
    failed: int = 0
    gone: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    left: int = 0
    other_licences: int = 0  # with no photo listed: its observations with photos under other licences
    errors: Counter[str] = field(default_factory=Counter)
    estimated_bytes: int = 0

    def settle(self, counts: Mapping[str, int], skipped: Mapping[str, int]) -> None:
        """Fill the columns that come from the state at the end of the run: ``counts`` of
        the taxon's photos by status (Store.status_counts), ``skipped`` by reason."""
        done, to_do = counts.get(DONE, 0), counts.get(PENDING, 0) + counts.get(FAILED, 0)
        self.skipped = Counter(skipped)
        self.had = done - self.downloaded
        self.left = to_do - self.failed
        self.listed = done + to_do + self.gone + self.skipped.total()


@dataclass
class FetchReport:
    """The whole run, for the summary and the exit code."""

    taxa: list[TaxonReport]
    manifest: Path
    dry_run: bool = False
    interrupted: bool = False
    error: InatdlError | None = None
    spent: dict[str, int] = field(default_factory=dict)  # bytes in each window at the end
    limits: dict[str, int] = field(default_factory=dict)
    sent: int = 0  # bytes the photo hosts sent this run, as the ledger counts them
    overruns: list[str] = field(default_factory=list)  # what went past a limit, and why
    api_requests: int = 0  # made by the listing, retries included
    pages: int = 0  # observation pages of the listing
    head_requests: int = 0  # to the photo hosts, for the --dry-run estimate
    moved: int = 0  # downloaded photos moved to the folder of a more specific taxon listed since

    def total(self, attribute: str) -> int:
        return sum(getattr(t, attribute) for t in self.taxa)

    def read_budget(self, budget: ByteBudget) -> None:
        """The byte budget's windows, limits and what went past them, at the end of the run."""
        self.spent = {window: budget.spent(window) for window in budget.windows}
        self.limits = {name: window.limit for name, window in budget.windows.items()}
        self.sent, self.overruns = budget.sent, budget.overruns


class Tally:
    """Counts the workers' outcomes into the reports of their taxon and size, from any thread."""

    def __init__(
        self, report_of: Callable[[int, str], TaxonReport], finished: Callable[[Outcome], None]
    ) -> None:
        self.report_of = report_of  # the report of a taxon id at a size
        self.finished = finished  # progress: one photo more
        self._lock = threading.Lock()

    def add(self, outcome: Outcome) -> None:
        with self._lock:
            report = self.report_of(outcome.job.taxon_id, outcome.job.size)
            if outcome.status == DONE and not outcome.already_there:
                report.downloaded += 1
                report.bytes += outcome.bytes
            elif outcome.status == FAILED:
                report.failed += 1
                report.errors[outcome.error] += 1
            elif outcome.status == GONE:
                report.gone += 1
        self.finished(outcome)
