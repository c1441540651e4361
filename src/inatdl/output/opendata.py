"""What `opendata sync` shows at its end: the tables downloaded or unchanged, the dump's date."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from inatdl.output.console import Output

if TYPE_CHECKING:  # for the annotations only: the command imports its modules when it runs
    from inatdl.opendata.sync import SyncReport


def show_sync(out: Output, report: SyncReport, open_data_dir: Path) -> None:
    """What `opendata sync` did, and the dump's date."""
    downloaded, unchanged = ", ".join(report.downloaded), ", ".join(report.unchanged)
    out.say(f"Downloaded: {downloaded or 'none'}; unchanged: {unchanged or 'none'}.")
    state = "made" if report.copied else "already up to date"
    out.say(
        f"Open data of {report.copy.dump_date} (Last-Modified) in {open_data_dir}; columnar copy {state}."
    )
