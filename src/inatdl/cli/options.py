"""The option types (sizes, comma lists, bounding boxes, split shares) and the options
several commands share: the job's filters of `photos fetch` and `photos plan`, the area
and dates `records fetch` takes too, the quality grades, --source, --seed."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import click
from click.core import ParameterSource

from inatdl.constants import ALL_LICENSES, DEFAULT_LICENSES, QUALITY_GRADES
from inatdl.splits import parse_splits
from inatdl.units import parse_size

#: An option's decorator, as click.option returns it.
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


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


class HttpUrl(click.ParamType):
    """An http(s) URL with a host: anything else would fail only at the first request, after
    the command had started (taxa.csv written with every name an error)."""

    name = "URL"

    def __init__(self, example: str) -> None:
        self.example = example

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        try:
            parts = urlsplit(text)
            usable = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        except ValueError:  # such as an unclosed [ of an IPv6 address
            usable = False
        if not usable:
            self.fail(
                f"{_given(text, param, ctx)} is not an http(s) URL; write it like {self.example}", param, ctx
            )
        return text


def _given(text: str, param: click.Parameter | None, ctx: click.Context | None) -> str:
    """A value as the user gave it, naming the environment variable it came from."""
    if param is None or param.name is None or ctx is None:
        return repr(text)
    if ctx.get_parameter_source(param.name) == ParameterSource.ENVIRONMENT:
        return f"{text!r} (from {param.envvar})"
    return repr(text)


class ShardSize(SizeType):
    """--shard-size: a byte size with its unit (500 alone could mean bytes or megabytes)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, str) and value.strip()[-1:].isdigit():
            self.fail(f"{value!r} has no unit; write it like 500MB or 1GB", param, ctx)
        return super().convert(value, param, ctx)


class Number(click.IntRange):
    """A whole number in a range, shown as N: Click's own says INTEGER RANGE in the help and
    "'abc' is not a valid integer range" for a word."""

    name = "integer"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "N"


class Rate(click.FloatRange):
    """A number of requests a second, shown as N (Click's own: FLOAT RANGE, "not a valid float range")."""

    name = "number"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "N"


class Day(click.DateTime):
    """A date, YYYY-MM-DD (Click's own shows [%Y-%m-%d] and names the format by its codes)."""

    def __init__(self) -> None:
        super().__init__(["%Y-%m-%d"])

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            self.fail(f"{value!r} is not a date written YYYY-MM-DD", param, ctx)


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


def name_given(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An option naming a taxon: blank would silently mean no filter at all."""
    if value is not None and not value.strip():
        raise click.BadParameter("give the scientific name of a higher taxon, e.g. Plantae", param=param)
    return value


API, OPEN_DATA = "api", "open-data"
source_option = click.option(
    "--source",
    type=click.Choice([API, OPEN_DATA]),
    default=API,
    show_default=True,
    help="Where to look: the live API, or the open data synced by `inatdl opendata sync` "
    "(no API request; up to a month old).",
)


def quality_option(help_text: str) -> Decorator:
    """--quality: quality grades, comma-separated; all of them by default."""
    return click.option(
        "--quality",
        type=CommaList(QUALITY_GRADES),
        default=",".join(QUALITY_GRADES),
        show_default=True,
        help=help_text,
    )


def _stacked(*options: Decorator) -> Decorator:
    """The options as one decorator, shown by --help in the order given."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


#: --bbox, --observed-from, --observed-to: where and when (photos fetch, photos plan, records fetch).
area_and_dates_options = _stacked(
    click.option("--bbox", type=BoundingBox(), help="Only observations inside SWLAT,SWLNG,NELAT,NELNG."),
    click.option("--observed-from", type=Day(), help="Observed on or after this day."),
    click.option("--observed-to", type=Day(), help="Observed on or before this day."),
)

#: The filters of a photos job: `photos plan` takes them exactly as `photos fetch` does.
job_filter_options = _stacked(
    click.option(
        "--license",
        "licenses",
        type=CommaList(ALL_LICENSES),
        default=",".join(DEFAULT_LICENSES),
        show_default=True,
        help="Licences to accept, comma-separated; all-rights-reserved photos never are.",
    ),
    quality_option("Quality grades to accept, comma-separated."),
    click.option("--place-id", type=Number(min=1), help="Only observations in this iNaturalist place."),
    area_and_dates_options,
)

max_per_taxon_option = click.option(
    "--max-per-taxon",
    type=Number(min=1),
    help="At most N photos a taxon (those already downloaded count); lowest observation ids first.",
)

seed_option = click.option(
    "--seed", type=int, default=0, show_default=True, help="Another seed draws other splits."
)


def check_dates(observed_from: dt.datetime | None, observed_to: dt.datetime | None) -> None:
    """A date range that ends before it starts is a usage error."""
    if observed_from and observed_to and observed_from > observed_to:
        raise click.BadParameter("--observed-from is after --observed-to", param_hint="--observed-from")


def iso_date(value: dt.datetime | None) -> str | None:
    """--observed-from/--observed-to as the filters take them: YYYY-MM-DD."""
    return value.date().isoformat() if value else None
