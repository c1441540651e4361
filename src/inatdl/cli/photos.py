"""`photos fetch` and `photos plan`: the photos of the resolved taxa, downloaded or planned."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from inatdl.cli.options import (
    OPEN_DATA,
    CommaList,
    Number,
    SizeType,
    SplitShares,
    check_dates,
    iso_date,
    job_filter_options,
    max_per_taxon_option,
    seed_option,
    source_option,
)
from inatdl.cli.settings import CONTEXT, EXIT_INTERRUPTED, Settings, sigterm_as_interrupt
from inatdl.constants import (
    DEFAULT_DAILY_LIMIT,
    DEFAULT_HOURLY_LIMIT,
    DEFAULT_SIZE,
    DEFAULT_WORKERS,
    MAX_WORKERS,
    PHOTO_SIZES,
)
from inatdl.errors import InatdlError
from inatdl.fetch import FetchOptions, FetchReport, fetch_photos
from inatdl.files import ensure_data_dir
from inatdl.observations import Filters
from inatdl.output.photos import show_dry_run, show_fetch, show_interrupted, show_plan, still_failed
from inatdl.output.progress import fetch_reporter
from inatdl.taxa import load_resolved_taxa


@click.command("fetch", context_settings=CONTEXT)
@click.option(
    "--size",
    "sizes",
    type=CommaList(list(PHOTO_SIZES)),
    multiple=True,
    default=[DEFAULT_SIZE],
    show_default=True,
    help="square 75 px, thumb 100, small 240, medium 500, large 1024, original 2048. Several, "
    "comma-separated (square,medium,original) or repeated, are fetched from one walk.",
)
@job_filter_options
@click.option(
    "--workers",
    type=Number(1, MAX_WORKERS),
    default=DEFAULT_WORKERS,
    show_default=True,
    help="Concurrent downloads.",
)
@click.option(
    "--hourly-limit",
    type=SizeType(),
    default=DEFAULT_HOURLY_LIMIT,
    show_default=True,
    help="Most bytes downloaded in any hour, by all runs on this data dir.",
)
@click.option(
    "--daily-limit",
    type=SizeType(),
    default=DEFAULT_DAILY_LIMIT,
    show_default=True,
    help="Most bytes downloaded in any 24 hours, by all runs on this data dir.",
)
@click.option("--no-wait", is_flag=True, help="At a limit, exit with code 75 instead of waiting.")
@max_per_taxon_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="List what would be downloaded, with its size and time under the limits; download nothing.",
)
@source_option
@click.pass_obj
def photos_fetch(
    settings: Settings,
    sizes: tuple[tuple[str, ...], ...],
    licenses: tuple[str, ...],
    quality: tuple[str, ...],
    place_id: int | None,
    bbox: tuple[float, float, float, float] | None,
    observed_from: dt.datetime | None,
    observed_to: dt.datetime | None,
    workers: int,
    hourly_limit: int,
    daily_limit: int,
    no_wait: bool,
    max_per_taxon: int | None,
    dry_run: bool,
    source: str,
) -> None:
    """Download the photos of every taxon in taxa.csv whose licence allows reuse.

    Run it again to resume: nothing already downloaded is fetched twice, and only
    observations newer than the last run are asked for.

    \b
    Example:
      inatdl photos fetch --size medium
      inatdl photos fetch --size small --license cc0,cc-by --quality research --max-per-taxon 500
      inatdl photos fetch --place-id 128892 --size square,medium,original
      inatdl photos fetch --source open-data --size medium    (after `inatdl opendata sync`)
    """
    filters = _job_filters(source, licenses, quality, place_id, bbox, observed_from, observed_to)
    data_dir = ensure_data_dir(settings.data_dir)
    taxa_rows = load_resolved_taxa(data_dir)
    photo_source = None
    if source == OPEN_DATA:
        from inatdl.opendata.source import open_data_source

        photo_source = open_data_source(settings.open_data_dir, settings.open_data_url, filters)
    options = FetchOptions(
        tuple(dict.fromkeys(size for listed in sizes for size in listed)),  # repeated: all of them
        filters,
        workers,
        hourly_limit,
        daily_limit,
        wait=not no_wait,
        max_per_taxon=max_per_taxon,
        dry_run=dry_run,
    )
    client = settings.client(pool_size=workers + 2)
    reporter = fetch_reporter(settings.out, dry_run)
    with sigterm_as_interrupt():
        report = fetch_photos(client, data_dir, taxa_rows, options, settings.clock, reporter, photo_source)
    if dry_run:
        show_dry_run(settings.out, report, options, None if source == OPEN_DATA else settings.api_rate)
    else:
        show_fetch(settings.out, report, settings.data_dir)
    _exit_for(settings, report)


def _exit_for(settings: Settings, report: FetchReport) -> None:
    if report.interrupted:
        show_interrupted(settings.out)
        sys.exit(EXIT_INTERRUPTED)
    if report.error is not None:
        raise report.error
    failed = report.total("failed")
    if failed and not report.dry_run:
        raise InatdlError(still_failed(failed))


def _parquet_name(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """OUT.parquet: a plan named plan.csv would be Parquet all the same, unreadable as CSV."""
    if value.suffix.lower() != ".parquet":
        raise click.BadParameter(
            f"{str(value)!r}: the plan is a Parquet file; give it a name ending in .parquet (plan.parquet)"
        )
    return value


@click.command("plan", context_settings=CONTEXT)
@click.argument(
    "out", metavar="OUT.parquet", type=click.Path(path_type=Path, dir_okay=False), callback=_parquet_name
)
@job_filter_options
@max_per_taxon_option
@click.option(
    "--size",
    type=click.Choice(list(PHOTO_SIZES), case_sensitive=False),
    default=DEFAULT_SIZE,
    show_default=True,
    help="The size of the photos' URLs: square 75 px, thumb 100, small 240, medium 500, large 1024, "
    "original 2048.",
)
@click.option(
    "--split", "splits", type=SplitShares(), help="Add a split column, drawn as `dataset export` draws it."
)
@seed_option
@source_option
@click.pass_obj
def photos_plan(
    settings: Settings,
    out: Path,
    splits: tuple[tuple[str, float], ...] | None,
    seed: int,
    source: str,
    size: str,
    licenses: tuple[str, ...],
    quality: tuple[str, ...],
    place_id: int | None,
    bbox: tuple[float, float, float, float] | None,
    observed_from: dt.datetime | None,
    observed_to: dt.datetime | None,
    max_per_taxon: int | None,
) -> None:
    """Write the photos `photos fetch` would download, after its filters and caps, to
    OUT.parquet without downloading them: img2dataset's input as it is (url, label and the
    photos.csv columns), for a download on a Spark or Ray cluster.

    \b
    Example:
      inatdl photos plan plan.parquet --source open-data --size medium --split train=0.9,test=0.1
      img2dataset --url_list plan.parquet --input_format parquet --url_col url --caption_col label \\
        --output_folder images --output_format files --resize_mode no --skip_reencode True
    """
    from inatdl.opendata.handoff import PlanFileOptions
    from inatdl.opendata.plan_job import PlanJob, api_plan, open_data_plan

    filters = _job_filters(source, licenses, quality, place_id, bbox, observed_from, observed_to)
    data_dir = ensure_data_dir(settings.data_dir)
    taxa_rows = load_resolved_taxa(data_dir)
    job = PlanJob(out, size, filters, max_per_taxon, PlanFileOptions(splits or (), seed))
    with sigterm_as_interrupt():
        if source == OPEN_DATA:
            report = open_data_plan(settings.open_data_dir, settings.open_data_url, taxa_rows, job)
        else:
            report = api_plan(settings.client(), data_dir, taxa_rows, job, settings.clock)
    show_plan(settings.out, report)


def _job_filters(
    source: str,
    licenses: tuple[str, ...],
    quality: tuple[str, ...],
    place_id: int | None,
    bbox: tuple[float, float, float, float] | None,
    observed_from: dt.datetime | None,
    observed_to: dt.datetime | None,
) -> Filters:
    """The job's filters, after the checks that make a wrong combination a usage error."""
    check_dates(observed_from, observed_to)
    if source == OPEN_DATA and place_id is not None:
        raise click.BadParameter(
            "the open data holds no places; use --bbox SWLAT,SWLNG,NELAT,NELNG instead (or --source api)",
            param_hint="--place-id",
        )
    return Filters(licenses, quality, place_id, bbox, iso_date(observed_from), iso_date(observed_to))
