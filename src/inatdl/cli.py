"""The command line: turns options into a call, the result into output.py's lines, and an exit code."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click

from inatdl import __version__, output
from inatdl.client import ApiClient, Timeout, build_session
from inatdl.clock import Clock
from inatdl.constants import (
    ALL_LICENSES,
    CONNECT_TIMEOUT,
    DEFAULT_API_RATE,
    DEFAULT_API_URL,
    DEFAULT_DAILY_LIMIT,
    DEFAULT_DATA_DIR,
    DEFAULT_HOURLY_LIMIT,
    DEFAULT_LICENSES,
    DEFAULT_SIZE,
    DEFAULT_WORKERS,
    MAX_WORKERS,
    PHOTO_SIZES,
    QUALITY_GRADES,
    READ_TIMEOUT,
    TAXA_FILE,
)
from inatdl.errors import InatdlError
from inatdl.export.writers import FORMATS as EXPORT_FORMATS
from inatdl.fetch import FetchOptions, FetchReport, fetch_photos
from inatdl.files import ensure_data_dir
from inatdl.observations import Filters
from inatdl.observed_taxa import RANK_SPECIES, RANKS, ObservedQuery, list_observed
from inatdl.output import Output
from inatdl.species_file import read_species_csv
from inatdl.splits import GROUP_BY, parse_splits
from inatdl.taxa import TaxonRow, load_resolved_taxa, resolve_species
from inatdl.units import parse_size

log = logging.getLogger("inatdl")
EXIT_INTERRUPTED = 130


@dataclass
class Settings:
    """The global options, and what tests may replace (the clock, the timeouts)."""

    data_dir: Path
    api_url: str
    api_rate: float
    verbose: bool
    quiet: bool
    clock: Clock = field(default_factory=Clock)
    timeout: Timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)

    @property
    def out(self) -> Output:
        return Output(self.quiet)

    def client(self, pool_size: int = 4) -> ApiClient:
        session = build_session(pool_size)
        return ApiClient(self.api_url, session, self.clock, self.api_rate, timeout=self.timeout)


class InatdlGroup(click.Group):
    """Turns the library's errors into one line and the contract's exit codes, and takes
    the global options after the command too (`inatdl taxa resolve x.csv --data-dir y`)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        with output.reader_may_leave():
            return super().main(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _globals_first(self, ctx, args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InatdlError as exc:
            _fail(ctx, str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail(ctx, "interrupted; the same command resumes", EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            _fail(
                ctx,
                f"unexpected {type(exc).__name__}: {exc} (run with -v for details, and please report it)",
                1,
            )


def _options(command: click.Command) -> dict[str, click.Parameter]:
    return {name: p for p in command.params for name in (*p.opts, *p.secondary_opts)}


def _takes_value(param: click.Parameter, word: str) -> bool:
    """True when ``word`` (an option of ``param``) is followed by its value as a word apart."""
    return "=" not in word and not (isinstance(param, click.Option) and param.is_flag)


def _globals_first(group: click.Group, ctx: click.Context, args: list[str]) -> list[str]:
    """``args`` with the global options given after the command moved before it, where
    Click reads them; the last one given wins, as ever. An option of the command's own
    that bears the same name, anything after ``--``, and words Click refuses anyway are
    left where they are."""
    globals_ = _options(group)
    start = 0  # the command's name
    while start < len(args) and args[start].startswith("-"):
        global_option = globals_.get(args[start].split("=", 1)[0])
        if global_option is None:
            return args
        start += 2 if _takes_value(global_option, args[start]) else 1
    command: click.Command = group
    end = start  # past the command's name (and its group's)
    while isinstance(command, click.Group) and end < len(args):
        found = command.get_command(ctx, args[end])
        if found is None:
            return args
        command, end = found, end + 1
    own = _options(command)
    moved: list[str] = []
    kept: list[str] = []
    at = end
    while at < len(args):
        name = args[at].split("=", 1)[0]
        if args[at] == "--":
            kept += args[at:]
            break
        ours = name in globals_ and name not in own
        option = globals_[name] if ours else own.get(name)
        step = 2 if option is not None and _takes_value(option, args[at]) else 1
        if ours and at + step > len(args):
            raise click.BadOptionUsage(name, f"Option '{name}' requires an argument.", ctx)
        (moved if ours else kept).extend(args[at : at + step])
        at += step
    return [*args[:start], *moved, *args[start:end], *kept]


def _fail(ctx: click.Context, message: str, code: int) -> NoReturn:
    settings = ctx.find_object(Settings)
    if settings is not None and settings.verbose:
        traceback.print_exc()
    output.show_error(message)
    ctx.exit(code)


def _finite(value: float, param: click.Parameter) -> float:
    if not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of requests a second", param=param)
    return value


def _name_given(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An option naming a taxon: blank would silently mean no filter at all."""
    if value is not None and not value.strip():
        raise click.BadParameter("give the scientific name of a higher taxon, e.g. Plantae", param=param)
    return value


class SizeType(click.ParamType):
    """A byte size such as 500MB, 5GB or 1.5GiB."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class ShardSize(SizeType):
    """--shard-size: a byte size with its unit (500 alone could mean bytes or megabytes)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, str) and value.strip()[-1:].isdigit():
            self.fail(f"{value!r} has no unit; write it like 500MB or 1GB", param, ctx)
        return super().convert(value, param, ctx)


class CommaList(click.ParamType):
    """A comma-separated list of known words, such as cc0,cc-by."""

    name = "LIST"

    def __init__(self, choices: Sequence[str]) -> None:
        self.choices = tuple(choices)

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        words = [w.strip().lower() for w in str(value).split(",") if w.strip()]
        unknown = [w for w in words if w not in self.choices]
        if unknown or not words:
            self.fail(f"{value!r}: choose from {', '.join(self.choices)} (comma-separated)", param, ctx)
        return tuple(dict.fromkeys(words))


class BoundingBox(click.ParamType):
    """SWLAT,SWLNG,NELAT,NELNG in degrees."""

    name = "SWLAT,SWLNG,NELAT,NELNG"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[float, float, float, float]:
        if isinstance(value, tuple):
            return value
        try:
            swlat, swlng, nelat, nelng = (float(v) for v in str(value).split(","))
        except ValueError:
            self.fail(f"{value!r} is not four numbers SWLAT,SWLNG,NELAT,NELNG", param, ctx)
        if not all(math.isfinite(v) for v in (swlat, swlng, nelat, nelng)):
            self.fail(f"{value!r} holds a number that is not finite", param, ctx)
        if not (-90 <= swlat <= 90 and -90 <= nelat <= 90):
            self.fail(f"{value!r}: latitudes must be between -90 and 90", param, ctx)
        if not (-180 <= swlng <= 180 and -180 <= nelng <= 180):
            self.fail(f"{value!r}: longitudes must be between -180 and 180", param, ctx)
        if swlat > nelat:
            self.fail(f"{value!r}: the south-west latitude is north of the north-east one", param, ctx)
        return swlat, swlng, nelat, nelng


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=InatdlGroup, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="inatdl")
@click.option(
    "--data-dir",
    envvar="INATDL_DATA_DIR",
    default=DEFAULT_DATA_DIR,
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where taxa.csv, photos/, photos.csv and the state live [env: INATDL_DATA_DIR].",
)
@click.option(
    "--api-url",
    envvar="INATDL_API_URL",
    default=DEFAULT_API_URL,
    show_default=True,
    help="The iNaturalist API base [env: INATDL_API_URL].",
)
@click.option(
    "--api-rate",
    envvar="INATDL_API_RATE",
    default=DEFAULT_API_RATE,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    callback=lambda ctx, param, value: _finite(value, param),
    help="Most API requests per second; iNaturalist asks for about 1 [env: INATDL_API_RATE].",
)
@click.option(
    "-v", "--verbose", "--debug", "verbose", is_flag=True, help="Debug logs, and tracebacks with errors."
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.pass_context
def cli(
    ctx: click.Context, data_dir: Path, api_url: str, api_rate: float, verbose: bool, quiet: bool
) -> None:
    """Build image datasets of species from iNaturalist photos, licence-aware and resumable.

    The options below may come before the command or after it.

    \b
    Example (two commands, in one folder; run the second again to resume):
      inatdl taxa resolve species.csv
      inatdl photos fetch --size medium
    """
    overrides = ctx.obj if isinstance(ctx.obj, dict) else {}
    ctx.obj = Settings(data_dir, api_url, api_rate, verbose, quiet, **overrides)
    output.setup_logging(verbose, quiet)


# taxa -----------------------------------------------------------------------------------


@cli.group(context_settings=CONTEXT)
def taxa() -> None:
    """Choose the taxa to download: from a list of names, or those observed in a place
    (writes taxa.csv).

    \b
    Example:
      inatdl taxa resolve species.csv
      inatdl taxa observed --place-id 128892
    """


@taxa.command("resolve", context_settings=CONTEXT)
@click.argument("species_csv", type=click.Path(path_type=Path))
@click.option(
    "--column",
    help="The column holding the scientific names [default: Species; a file without it is read as "
    "one name a line].",
)
@click.option("--refresh", is_flag=True, help="Ask the API again for names resolved before.")
@click.pass_obj
def taxa_resolve(settings: Settings, species_csv: Path, column: str | None, refresh: bool) -> None:
    """Resolve the names of SPECIES_CSV to taxon ids and write taxa.csv in the data dir.

    SPECIES_CSV is delimited by commas, semicolons or tabs with a header row, or is plain
    text with one name a line. Names are matched on the exact scientific name, ignoring
    case and runs of spaces; an inactive name, or another scientific name of a taxon, is
    followed to the taxon; a common name is not matched (the summary names its taxon).
    A rerun asks only for new names, and those the API could not be asked about.

    \b
    Example:
      inatdl taxa resolve species.csv
      inatdl --data-dir lythrum taxa resolve my-list.csv --column "Scientific name"
    """
    names = read_species_csv(species_csv, column)
    data_dir = ensure_data_dir(settings.data_dir)
    client = settings.client()
    done: list[TaxonRow] = []

    def show(row: TaxonRow) -> None:
        done.append(row)
        log.debug("%d/%d %s: %s", len(done), len(names), row.input_name, row.match)

    resolution = resolve_species(client, names, data_dir, refresh=refresh, on_name=show)
    output.show_taxa(settings.out, resolution.rows, data_dir / TAXA_FILE)
    resolution.raise_for_unasked()


@taxa.command("observed", context_settings=CONTEXT)
@click.option(
    "--place-id", type=click.IntRange(min=1), required=True, help="The iNaturalist place (its number)."
)
@click.option(
    "--within",
    metavar="NAME",
    callback=_name_given,
    help="Only taxa under this higher taxon, e.g. Plantae or Aves.",
)
@click.option(
    "--rank",
    type=click.Choice(RANKS),
    default=RANK_SPECIES,
    show_default=True,
    help="species: a variety's or subspecies' observations count for its species; any: the most "
    "specific taxa observed, as iNaturalist lists them (a genus when none of its species was).",
)
@click.option(
    "--quality",
    type=CommaList(QUALITY_GRADES),
    default=",".join(QUALITY_GRADES),
    show_default=True,
    help="Quality grades of the observations to count, comma-separated.",
)
@click.pass_obj
def taxa_observed(
    settings: Settings, place_id: int, within: str | None, rank: str, quality: tuple[str, ...]
) -> None:
    """List the taxa observed with photos in a place and write them as taxa.csv.

    taxa.csv then holds taxa, not the place: fetch their photos from that place with
    `photos fetch --place-id` (as printed at the end); without it, from everywhere.

    \b
    Example (every species of a marine protected area, with its photos from there):
      inatdl taxa observed --place-id 128892
      inatdl photos fetch --place-id 128892 --size medium
      inatdl taxa observed --place-id 128892 --within Actinopterygii --quality research
    """
    data_dir = ensure_data_dir(settings.data_dir)
    query = ObservedQuery(place_id, within, rank, quality)

    def show(page: int, pages: int) -> None:
        output.show_observed_page(settings.out, page, pages)

    report = list_observed(settings.client(), query, data_dir, on_page=show)
    output.show_observed(settings.out, report, query, settings.data_dir)


# photos ---------------------------------------------------------------------------------


@cli.group(context_settings=CONTEXT)
def photos() -> None:
    """Download the photos of the resolved taxa (writes photos/ and photos.csv).

    \b
    Example:
      inatdl photos fetch --size medium
    """


def _date(value: dt.datetime | None) -> str | None:
    return value.date().isoformat() if value else None


@photos.command("fetch", context_settings=CONTEXT)
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
@click.option(
    "--license",
    "licenses",
    type=CommaList(ALL_LICENSES),
    default=",".join(DEFAULT_LICENSES),
    show_default=True,
    help="Licences to accept, comma-separated; all-rights-reserved photos never are.",
)
@click.option(
    "--quality",
    type=CommaList(QUALITY_GRADES),
    default=",".join(QUALITY_GRADES),
    show_default=True,
    help="Quality grades to accept, comma-separated.",
)
@click.option("--place-id", type=click.IntRange(min=1), help="Only observations in this iNaturalist place.")
@click.option("--bbox", type=BoundingBox(), help="Only observations inside SWLAT,SWLNG,NELAT,NELNG.")
@click.option("--observed-from", type=click.DateTime(["%Y-%m-%d"]), help="Observed on or after (YYYY-MM-DD).")
@click.option("--observed-to", type=click.DateTime(["%Y-%m-%d"]), help="Observed on or before (YYYY-MM-DD).")
@click.option(
    "--workers",
    type=click.IntRange(1, MAX_WORKERS),
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
@click.option(
    "--max-per-taxon",
    type=click.IntRange(min=1),
    help="At most N photos a taxon (those already downloaded count); lowest observation ids first.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="List what would be downloaded, with its size and time under the limits; download nothing.",
)
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
) -> None:
    """Download the photos of every taxon in taxa.csv whose licence allows reuse.

    Run it again to resume: nothing already downloaded is fetched twice, and only
    observations newer than the last run are asked for.

    \b
    Example:
      inatdl photos fetch --size medium
      inatdl photos fetch --size small --license cc0,cc-by --quality research --max-per-taxon 500
      inatdl photos fetch --place-id 128892 --size square,medium,original
    """
    if observed_from and observed_to and observed_from > observed_to:
        raise click.BadParameter("--observed-from is after --observed-to", param_hint="--observed-from")
    data_dir = ensure_data_dir(settings.data_dir)
    taxa_rows = load_resolved_taxa(data_dir)
    filters = Filters(licenses, quality, place_id, bbox, _date(observed_from), _date(observed_to))
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
    reporter = output.fetch_reporter(settings.out)
    with _sigterm_as_interrupt():
        report = fetch_photos(client, data_dir, taxa_rows, options, settings.clock, reporter)
    if dry_run:
        output.show_dry_run(settings.out, report, options, settings.api_rate)
    else:
        output.show_fetch(settings.out, report, settings.data_dir)
    _exit_for(settings, report)


def _exit_for(settings: Settings, report: FetchReport) -> None:
    if report.interrupted:
        output.show_interrupted(settings.out)
        sys.exit(EXIT_INTERRUPTED)
    if report.error is not None:
        raise report.error
    failed = report.total("failed")
    if failed and not report.dry_run:
        raise InatdlError(output.still_failed(failed))


class _sigterm_as_interrupt:
    """SIGTERM stops a fetch like Ctrl-C: state saved, exit 130."""

    def __enter__(self) -> None:
        self._previous: Callable[..., Any] | None = None
        try:
            self._previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # type: ignore[assignment]
        except ValueError:  # not the main thread (tests driving the CLI from a thread)
            self._previous = None

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def _raise_interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


# records --------------------------------------------------------------------------------


@cli.group(context_settings=CONTEXT)
def records() -> None:
    """The observation records themselves, as Darwin Core (writes records.csv).

    \b
    Example:
      inatdl records fetch --place-id 128892
    """


@records.command("fetch", context_settings=CONTEXT)
@click.option("--place-id", type=click.IntRange(min=1), help="Every observation in this iNaturalist place.")
@click.option(
    "--within", metavar="NAME", callback=_name_given, help="Every observation under this taxon, e.g. Aves."
)
@click.option(
    "--quality",
    type=CommaList(QUALITY_GRADES),
    default=",".join(QUALITY_GRADES),
    show_default=True,
    help="Quality grades to keep, comma-separated.",
)
@click.option("--bbox", type=BoundingBox(), help="Only observations inside SWLAT,SWLNG,NELAT,NELNG.")
@click.option("--observed-from", type=click.DateTime(["%Y-%m-%d"]), help="Observed on or after (YYYY-MM-DD).")
@click.option("--observed-to", type=click.DateTime(["%Y-%m-%d"]), help="Observed on or before (YYYY-MM-DD).")
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

    if observed_from and observed_to and observed_from > observed_to:
        raise click.BadParameter("--observed-from is after --observed-to", param_hint="--observed-from")
    data_dir = ensure_data_dir(settings.data_dir)
    client = settings.client()
    taxa_rows = records_taxa(client, data_dir, place_id, within)
    filters = Filters((), quality, place_id, bbox, _date(observed_from), _date(observed_to))
    query = RecordsQuery(filters, taxa_rows, file_format)

    def show(done: int, left: int) -> None:
        output.show_records_page(settings.out, done, left)

    with _sigterm_as_interrupt():
        report = fetch_records(client, data_dir, query, on_page=show)
    output.show_records(settings.out, report)
    if report.stopped is not None:
        raise report.stopped


# dataset --------------------------------------------------------------------------------


class SplitShares(click.ParamType):
    """train=0.8,validation=0.1,test=0.1: split names and shares that add up to 1."""

    name = "NAME=SHARE,..."

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[tuple[str, float], ...]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_splits(str(value))
        except ValueError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


@cli.group(context_settings=CONTEXT)
def dataset() -> None:
    """Turn the downloaded photos into a dataset that ML tools load as it is.

    \b
    Example:
      inatdl dataset export my-dataset --split train=0.8,validation=0.1,test=0.1
    """


@dataset.command("export", context_settings=CONTEXT)
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option(
    "--split",
    "splits",
    type=SplitShares(),
    help="Split folders and their shares, e.g. train=0.8,validation=0.1,test=0.1 (names: "
    "train, validation, test). Without it, one set of taxon folders.",
)
@click.option(
    "--group-by",
    type=click.Choice(GROUP_BY),
    default="observation",
    show_default=True,
    help="Photos of one observation (or one observer) never span two splits.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Another seed draws other splits.")
@click.option("--min-per-taxon", type=click.IntRange(min=1), help="Leave out taxa with fewer photos.")
@click.option(
    "--max-per-taxon",
    type=click.IntRange(min=1),
    help="Keep at most N photos a taxon, one of each observation first; the same ones every time.",
)
@click.option(
    "--size",
    type=click.Choice(list(PHOTO_SIZES)),
    help="The photo size to export, when the data dir holds several.",
)
@click.option("--copy", is_flag=True, help="Copy the photos instead of hard-linking them.")
@click.option(
    "--format",
    "format_",
    type=click.Choice(EXPORT_FORMATS),
    default=EXPORT_FORMATS[0],
    show_default=True,
    help="imagefolder: a file a photo; webdataset: tar shards; parquet: Parquet files, images inside.",
)
@click.option(
    "--shard-size",
    type=ShardSize(),
    default="500MB",
    show_default=True,
    help="The largest tar or Parquet file (webdataset, parquet).",
)
@click.pass_obj
def dataset_export(
    settings: Settings,
    out_dir: Path,
    splits: tuple[tuple[str, float], ...] | None,
    group_by: str,
    seed: int,
    min_per_taxon: int | None,
    max_per_taxon: int | None,
    size: str | None,
    copy: bool,
    format_: str,
    shard_size: int,
) -> None:
    """Build OUT_DIR from the photos in the data dir, for torchvision's ImageFolder and
    Hugging Face's imagefolder: taxon folders (in split folders with --split), a
    metadata.csv with each photo's licence and attribution, README.md, CREDITS.md and
    croissant.json. --format webdataset or parquet writes shards instead, for millions.

    The data dir is only read. Photos are hard links (no extra disk) where possible.
    Exporting again into OUT_DIR updates it: a photo never changes split.

    \b
    Example:
      inatdl dataset export my-dataset --split train=0.8,validation=0.1,test=0.1
      inatdl dataset export birds --split train=0.9,test=0.1 --group-by observer --max-per-taxon 500
      inatdl dataset export big --split train=0.9,test=0.1 --format webdataset --shard-size 1GB
    """
    from inatdl.export import ExportOptions, export_dataset  # pandas: only for this command

    options = ExportOptions(
        splits=splits or (),
        group_by=group_by,
        seed=seed,
        min_per_taxon=min_per_taxon,
        max_per_taxon=max_per_taxon,
        size=size,
        copy=copy,
        format=format_,
        shard_size=shard_size,
    )
    command = output.export_command(settings.data_dir, out_dir, options)
    report = export_dataset(settings.data_dir, out_dir, dataclasses.replace(options, command=command))
    output.show_export(settings.out, report, options)
