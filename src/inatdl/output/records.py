"""What `records fetch` shows: its pages as it lists them, then the records written."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inatdl.output.console import Output

if TYPE_CHECKING:  # for the annotations only: the command imports its modules when it runs
    from inatdl.records_fetch import RecordsReport


def show_records_page(out: Output, done: int, left: int) -> None:
    if left:
        out.progress(f"Listing the observations: page {done} of about {done + left}")


def show_records(out: Output, report: RecordsReport) -> None:
    if report.started_over:
        out.say(f"Made again from the start: {report.started_over}.")
    requests = "1 API request" if report.api_requests == 1 else f"{report.api_requests} API requests"
    pages = "1 observation page" if report.pages == 1 else f"{report.pages} observation pages"
    out.say(f"Wrote {report.path} ({report.records:,} records, {report.new:,} new; {requests}, {pages}).")
    if isinstance(report.stopped, KeyboardInterrupt):
        out.warn("Stopped before the end: what was fetched is saved; run the same command to go on.")
