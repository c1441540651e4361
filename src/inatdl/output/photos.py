"""What `photos fetch` and `photos plan` show: the per-taxon table, the skipped photos, the
byte budget's use, the dry run's estimate, and the plan file's img2dataset command."""

from __future__ import annotations

import json
import shlex
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from inatdl.budget import budget_hours
from inatdl.fetch import FetchOptions
from inatdl.output.console import Output, photos
from inatdl.report import FetchReport, TaxonReport
from inatdl.units import format_size

if TYPE_CHECKING:  # for the annotations only: the command imports its modules when it runs
    from inatdl.opendata.handoff import PlanFileReport


# The taxon column: as wide as its longest label, from the first width to the second; a
# longer name is cut, ending in "…" so that the cut shows.
LABEL_WIDTHS = (30, 60)


def show_fetch(out: Output, report: FetchReport, data_dir: Path) -> None:
    labels, width = _taxon_column(report)
    out.say(
        f"{'taxon':<{width}} {'listed':>7} {'had':>7} {'new':>7} {'failed':>6} {'gone':>5} "
        f"{'skipped':>7} {'left':>6} {'bytes':>10}"
    )
    several = _several_sizes(report)
    for t, label in zip(report.taxa, labels, strict=True):
        out.say(
            f"{label:<{width}} {t.listed:>7} {t.had:>7} {t.downloaded:>7} {t.failed:>6} "
            f"{t.gone:>5} {sum(t.skipped.values()):>7} {t.left:>6} {format_size(t.bytes):>10}"
        )
    skipped = sum((t.skipped for t in report.taxa), Counter())
    out.say(
        f"{'total':<{width}} {report.total('listed'):>7} {report.total('had'):>7} "
        f"{report.total('downloaded'):>7} {report.total('failed'):>6} "
        f"{report.total('gone'):>5} {sum(skipped.values()):>7} {report.total('left'):>6} "
        f"{format_size(report.total('bytes')):>10}"
    )
    _show_skipped(out, report)
    for t in report.taxa:
        for error, count in t.errors.most_common(5):
            out.warn(f"Failed in {_taxon_label(t, several)}: {count} × {error}")
    gone = report.total("gone")
    if gone:
        out.say(f"{photos(gone)} gone from iNaturalist (404/410); not retried.")
    if report.moved:
        out.say(
            f"Moved {photos(report.moved)} already downloaded to the folder of a more specific taxon "
            "listed since (a variety or subspecies), with no new download."
        )
    out.say(f"Photos in {data_dir / 'photos'}; manifest {report.manifest}.")
    _show_budget(out, report)


def _several_sizes(report: FetchReport) -> bool:
    return len({t.size for t in report.taxa}) > 1


def _taxon_column(report: FetchReport) -> tuple[list[str], int]:
    """The table's taxon labels, and the column's width: the longest label's, within
    LABEL_WIDTHS (a label longer than the most is cut to it)."""
    several = _several_sizes(report)
    least, most = LABEL_WIDTHS
    width = min(most, max([least, *(len(_taxon_label(t, several)) for t in report.taxa)]))
    return [_taxon_label(t, several, width) for t in report.taxa], width


def _taxon_label(report: TaxonReport, several_sizes: bool, width: int | None = None) -> str:
    """A taxon's name, with the size when a run has several; at most ``width`` characters,
    the name cut and ending in "…" (the size kept) when it is longer."""
    suffix = f" ({report.size})" if several_sizes else ""
    name = report.name
    if width is not None and len(name) + len(suffix) > width:
        name = name[: width - len(suffix) - 1].rstrip() + "…"
    return name + suffix


def _show_skipped(out: Output, report: FetchReport) -> None:
    """The photos the filters refused, by reason; and why a taxon has none to download."""
    skipped = sum((t.skipped for t in report.taxa), Counter())
    if skipped:
        out.say("Skipped: " + ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())))
    for t in report.taxa:
        if t.listed and t.skipped.total() == t.listed:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(t.skipped.items()))
            out.say(f"{t.name}: none of its {photos(t.listed)} can be downloaded ({reasons} skipped).")
        elif not t.listed and t.other_licences:
            observations = "1 observation" if t.other_licences == 1 else f"{t.other_licences} observations"
            out.say(
                f"{t.name}: no photo to download: none of its {observations} with photos has one under "
                "the licences asked (all rights reserved, or see --license)."
            )
        elif not t.listed and not report.dry_run and not report.interrupted:
            out.say(
                f"{t.name}: no photo under these filters (--dry-run tells whether it has photos "
                "under other licences)."
            )


def _show_budget(out: Output, report: FetchReport) -> None:
    """How much of each window the run used, and anything that went past a limit."""
    hourly, daily = report.limits["hourly"], report.limits["daily"]
    out.say(
        f"Byte budget: the photo hosts sent {format_size(report.sent)} in this run; the last hour "
        f"holds {format_size(report.spent['hourly'])} of the {format_size(hourly)} hourly limit "
        f"({100 * report.spent['hourly'] / hourly:.0f} %), the last day "
        f"{format_size(report.spent['daily'])} of {format_size(daily)} "
        f"({100 * report.spent['daily'] / daily:.0f} %)."
    )
    for overrun in report.overruns:
        out.warn(f"Over a limit: {overrun}.")


def show_dry_run(out: Output, report: FetchReport, options: FetchOptions, api_rate: float | None) -> None:
    """The dry run's estimate; ``api_rate`` is None when the listing came from the open data."""
    labels, width = _taxon_column(report)
    out.say(f"{'taxon':<{width}} {'to download':>11} {'skipped':>7} {'about':>10}")
    for t, label in zip(report.taxa, labels, strict=True):
        out.say(
            f"{label:<{width}} {t.queued:>11} {t.skipped.total():>7} {format_size(t.estimated_bytes):>10}"
        )
    if _several_sizes(report):  # each size by its own estimate
        for size in dict.fromkeys(t.size for t in report.taxa):
            of_size = [t for t in report.taxa if t.size == size]
            queued, estimated = sum(t.queued for t in of_size), sum(t.estimated_bytes for t in of_size)
            skipped_here = sum(t.skipped.total() for t in of_size)
            out.say(f"{'total ' + size:<{width}} {queued:>11} {skipped_here:>7} {format_size(estimated):>10}")
    total = report.total("estimated_bytes")
    skipped = sum(t.skipped.total() for t in report.taxa)
    out.say(f"{'total':<{width}} {report.total('queued'):>11} {skipped:>7} {format_size(total):>10}")
    _show_skipped(out, report)
    hours = budget_hours(total, options.hourly_limit, options.daily_limit)
    limits = f"{format_size(options.hourly_limit)}/hour, {format_size(options.daily_limit)}/day"
    needs = "fits in one hour" if hours <= 1 else f"needs at least {_duration(hours)}"
    out.say(f"Under the byte limits ({limits}) that {needs}. Nothing was downloaded (dry run).")
    if any(report.spent.values()):
        out.say(
            f"Already downloaded into this data dir in the last hour: {format_size(report.spent['hourly'])}, "
            f"in the last day: {format_size(report.spent['daily'])}."
        )
    out.say(_listing_cost(report, api_rate))


def _listing_cost(report: FetchReport, api_rate: float | None) -> str:
    """The API requests the listing took, and their time at --api-rate: a job's real cost
    (none from the open data)."""
    pages = "1 observation page" if report.pages == 1 else f"{report.pages} observation pages"
    if api_rate is None:
        line = "Listed from the open data, with no API request."
    else:
        line = (
            f"API requests for the listing: {report.api_requests} ({pages}), "
            f"{_seconds(report.api_requests / api_rate)} at {api_rate:g} a second; "
            "the listing is kept, so the real run asks only for what is new."
        )
    if report.head_requests:
        line += f" Sizes estimated from {report.head_requests} HEAD requests to the photo hosts."
    return line


def _seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{round(seconds, 1):g} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else _duration(seconds / 3600)


def _duration(hours: float) -> str:
    return f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.1f} days"


def still_failed(count: int) -> str:
    """The error that ends a run whose photos failed all their retries."""
    return (
        f"{photos(count)} still failed after their retries (see above); "
        "run the same command again to retry them"
    )


def show_interrupted(out: Output) -> None:
    out.warn("Interrupted: state saved; run the same command again to resume.")


def show_plan(out: Output, report: PlanFileReport) -> None:
    """What `photos plan` wrote, and the img2dataset command that downloads it."""
    out.say(f"Wrote {report.path}: {report.photos:,} photos of {report.taxa:,} taxa; nothing was downloaded.")
    for name, count in report.per_split.items():
        share = count / report.photos if report.photos else 0.0
        out.say(f"  {name:<11} {count:>8,}  {share:6.1%}")
    columns = json.dumps(report.extra_columns, separators=(",", ":"))
    out.say("Download it with img2dataset (it keeps no byte budget: see the README):")
    out.say(
        f"  img2dataset --url_list {shlex.quote(str(report.path))} --input_format parquet --url_col url "
        f"--caption_col label --save_additional_columns {shlex.quote(columns)} "
        "--output_folder images --output_format files --resize_mode no --skip_reencode True"
    )
