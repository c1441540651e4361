"""What a run of `photos fetch` did, per taxon and in all: the data the summary is printed
from (cli.py) and the exit code decided on.

The per-taxon counts are counted where each photo's fate is decided: the listing counts
``listed`` and ``skipped``, the workers the outcomes (:class:`Tally`).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from inatdl.errors import InatdlError
from inatdl.state import DONE, FAILED, GONE, Outcome


@dataclass
class TaxonReport:
    """What happened to one taxon in this run."""

    taxon_id: int
    name: str
    size: str = ""  # the photo size these counts are of (a run may fetch several)
    listed: int = 0
    queued: int = 0
    had: int = 0
    downloaded: int = 0
    bytes: int = 0
    failed: int = 0
    gone: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    estimated_bytes: int = 0


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


class Tally:
    """Counts the workers' outcomes into the reports of their taxon and size, from any thread."""

    def __init__(
        self, reports: Mapping[tuple[int, str], TaxonReport], finished: Callable[[Outcome], None]
    ) -> None:
        self.reports = reports
        self.finished = finished  # progress: one photo more
        self._lock = threading.Lock()

    def add(self, outcome: Outcome) -> None:
        with self._lock:
            report = self.reports[outcome.job.taxon_id, outcome.job.size]
            if outcome.status == DONE:
                report.downloaded += not outcome.already_there
                report.had += outcome.already_there
                report.bytes += 0 if outcome.already_there else outcome.bytes
            elif outcome.status == FAILED:
                report.failed += 1
                report.errors[outcome.error] += 1
            elif outcome.status == GONE:
                report.gone += 1
        self.finished(outcome)
