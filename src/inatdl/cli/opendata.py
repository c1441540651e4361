"""`opendata sync`: iNaturalist's monthly open data, downloaded for bulk jobs."""

from __future__ import annotations

import click

from inatdl.cli.settings import CONTEXT, Settings, sigterm_as_interrupt
from inatdl.client import build_session
from inatdl.output.opendata import show_sync
from inatdl.output.progress import SyncProgress


@click.command("sync", context_settings=CONTEXT)
@click.pass_obj
def opendata_sync(settings: Settings) -> None:
    """Download the open data's four tables into the open-data dir (resuming a cut
    download, skipping a table that has not changed) and make the columnar copy that
    `--source open-data` queries.

    \b
    Example:
      inatdl opendata sync
      inatdl --open-data-dir /big/disk/inat-open-data opendata sync
    """
    from inatdl.opendata.sync import sync

    reporter = SyncProgress(settings.quiet)
    with sigterm_as_interrupt():
        report = sync(
            build_session(), settings.open_data_url, settings.open_data_dir, settings.clock, reporter,
            settings.timeout,
        )  # fmt: skip
    show_sync(settings.out, report, settings.open_data_dir)
