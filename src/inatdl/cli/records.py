"""`records fetch`: the observation records themselves, as Darwin Core."""

from __future__ import annotations

import datetime as dt

import click

from inatdl.cli.options import (
    Number,
    area_and_dates_options,
    check_dates,
    iso_date,
    name_given,
    quality_option,
)
from inatdl.cli.settings import CONTEXT, Settings, sigterm_as_interrupt
from inatdl.files import ensure_data_dir
from inatdl.observations import Filters
from inatdl.output.records import show_records, show_records_page


@click.command("fetch", context_settings=CONTEXT)
@click.option("--place-id", type=Number(min=1), help="Every observation in this iNaturalist place.")
@click.option(
    "--within", metavar="NAME", callback=name_given, help="Every observation under this taxon, e.g. Aves."
)
@quality_option("Quality grades to keep, comma-separated.")
@area_and_dates_options
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "parquet"]),
    default="csv",
    show_default=True,
    help="records.csv, or records.parquet.",
)
@click.pass_obj
def records_fetch(
    settings: Settings,
    place_id: int | None,
    within: str | None,
    quality: tuple[str, ...],
    bbox: tuple[float, float, float, float] | None,
    observed_from: dt.datetime | None,
    observed_to: dt.datetime | None,
    file_format: str,
) -> None:
    """Write every observation under the filter, with or without photos, as Darwin Core
    records: records.csv (or records.parquet) in the data dir, one row an observation.

    The taxa are those of taxa.csv, unless --place-id or --within is given (then every
    observation there, of any taxon). Run it again to add only observations newer than
    the last one recorded.

    \b
    Example (every record of a marine protected area):
      inatdl records fetch --place-id 128892
      inatdl records fetch --place-id 128892 --within Actinopterygii --quality research --format parquet
      inatdl records fetch --observed-from 2024-01-01      (the taxa of taxa.csv)
    """
    from inatdl.records_fetch import RecordsQuery, fetch_records, records_taxa  # pandas: this command only

    check_dates(observed_from, observed_to)
    data_dir = ensure_data_dir(settings.data_dir)
    client = settings.client()
    taxa_rows = records_taxa(client, data_dir, place_id, within)
    filters = Filters((), quality, place_id, bbox, iso_date(observed_from), iso_date(observed_to))
    query = RecordsQuery(filters, taxa_rows, file_format)

    def show(done: int, left: int) -> None:
        show_records_page(settings.out, done, left)

    with sigterm_as_interrupt():
        report = fetch_records(client, data_dir, query, on_page=show)
    show_records(settings.out, report)
    if report.stopped is not None:
        raise report.stopped
