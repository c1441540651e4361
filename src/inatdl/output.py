"""Everything inatdl shows: tables, summaries, progress bars, wait lines, rerun commands.

The library returns reports and never prints; cli.py hands them here. Results go to
stdout (nothing under --quiet), what went wrong and progress to stderr. Lines are written
with click.echo, the writer Click's test runner captures.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click
from tqdm import tqdm

from inatdl.budget import budget_hours
from inatdl.constants import DEFAULT_DATA_DIR, QUALITY_GRADES
from inatdl.fetch import FetchOptions
from inatdl.observed_taxa import RANK_SPECIES, ObservedQuery, ObservedReport
from inatdl.report import FetchReport, TaxonReport
from inatdl.state import DONE, Outcome
from inatdl.taxa import ERROR, NOT_FOUND, TaxonRow
from inatdl.units import format_size

if TYPE_CHECKING:  # the modules import pandas: loaded only by `dataset export`, `records fetch`
    from inatdl.export import ExportOptions, ExportReport
    from inatdl.records_fetch import RecordsReport

log = logging.getLogger("inatdl")
LOG_EVERY_SECONDS = 10.0


class Output:
    """Where lines go: results to stdout unless quiet, problems to stderr always."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def say(self, text: str = "") -> None:
        if not self.quiet:
            click.echo(text)

    def warn(self, text: str) -> None:
        click.echo(text, err=True)

    def progress(self, text: str) -> None:
        """A line of progress on stderr, left out under --quiet."""
        if not self.quiet:
            click.echo(text, err=True)


class _ReaderMayLeave:
    """A stream whose reader may stop reading (`inatdl ... | head`): what is written after
    is discarded, and the command goes on to the exit code its work earns. Otherwise that
    code would depend on timing: 0 when the output fitted in the pipe before the reader
    left, 1 (Click's) when it did not."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._discard()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._discard()

    def _discard(self) -> None:
        """From now on the stream's descriptor writes to the null device."""
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, self._stream.fileno())
        finally:
            os.close(null)
        with contextlib.suppress(OSError):
            self._stream.flush()  # what was buffered for the reader goes nowhere

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def reader_may_leave() -> Iterator[None]:
    """stdout and stderr, for the duration, as _ReaderMayLeave streams."""
    streams = sys.stdout, sys.stderr
    sys.stdout = _ReaderMayLeave(sys.stdout)
    sys.stderr = _ReaderMayLeave(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams


def setup_logging(verbose: bool, quiet: bool) -> None:
    """The library's log lines on stderr: debug with -v, errors only with -q."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.propagate = False
    if verbose:
        log.setLevel(logging.DEBUG)
    elif quiet:
        log.setLevel(logging.ERROR)
    else:
        log.setLevel(logging.INFO if not sys.stderr.isatty() else logging.WARNING)


def photos(count: int) -> str:
    return f"{count} photo" if count == 1 else f"{count} photos"


def command_line(data_dir: Path, *words: str) -> str:
    """An inatdl command a user can paste: `--data-dir` only when it is not the default."""
    command = ["inatdl"]
    if Path(data_dir) != Path(DEFAULT_DATA_DIR):
        command += ["--data-dir", str(data_dir)]
    return shlex.join([*command, *words])


# taxa -----------------------------------------------------------------------------------


def show_taxa(out: Output, rows: Sequence[TaxonRow], path: Path) -> None:
    width = max([len(r.input_name) for r in rows] + [10])
    out.say(f"{'name':<{width}}  {'match':<9}  {'taxon_id':>9}  {'accepted name':<28}  {'observations':>12}")
    for row in rows:
        taxon_id = "" if row.taxon_id is None else str(row.taxon_id)
        count = "" if row.observations_count is None else str(row.observations_count)
        note = f"  ({row.note})" if row.note and row.note != "from taxa.csv" else ""
        out.say(
            f"{row.input_name:<{width}}  {row.match:<9}  {taxon_id:>9}  {row.name:<28}  {count:>12}{note}"
        )
    missing = [r.input_name for r in rows if r.match == NOT_FOUND]
    unasked = [r.input_name for r in rows if r.match == ERROR]
    resolved = len(rows) - len(missing) - len(unasked)
    out.say()
    if missing:
        out.say(f"Not found on iNaturalist ({len(missing)}): {', '.join(missing)}")
    if unasked:
        out.say(f"Not asked, iNaturalist could not be reached ({len(unasked)}): {', '.join(unasked)}")
    common = [f"{r.input_name} (of {r.common_name_of})" for r in rows if r.common_name_of]
    if common:
        out.say(f"Common names, not scientific names ({len(common)}): {', '.join(common)}")
        out.say("taxa resolve matches scientific names only: write the scientific name to take its taxon.")
    out.say(f"Wrote {path} ({resolved} of {len(rows)} names resolved).")


def show_observed_page(out: Output, page: int, pages: int) -> None:
    if pages > 1:
        out.progress(f"Listing the taxa observed: page {page} of {pages}")


def show_observed(out: Output, report: ObservedReport, query: ObservedQuery, data_dir: Path) -> None:
    width = max([len(r.name) for r in report.rows] + [10])
    out.say(f"{'taxon_id':>9}  {'name':<{width}}  {'rank':<10}  {'observations':>12}")
    for row in report.rows:
        out.say(f"{row.taxon_id:>9}  {row.name:<{width}}  {row.rank:<10}  {row.observations_count:>12}")
    kind = "species" if query.rank == RANK_SPECIES else "taxa"
    under = f" under {report.within.name}" if report.within is not None else ""
    out.say()
    out.say(f"Wrote {report.path} ({len(report.rows)} {kind}{under} observed in place {query.place_id}).")
    within = report.within
    if within is not None and within.note:  # another taxon bears the name, or it is a synonym
        out.say(f"--within {within.input_name}: taxon {within.taxon_id} {within.name} ({within.note})")
    words = ["photos", "fetch", "--place-id", str(query.place_id)]
    if set(query.quality) != set(QUALITY_GRADES):
        words += ["--quality", ",".join(query.quality)]
    out.say("Fetch their photos from that place with:")
    out.say("  " + command_line(data_dir, *words))


# photos fetch ---------------------------------------------------------------------------


class JobEstimate:
    """The job's photos and bytes as far as they are known, for the bars' totals.

    Photos: those queued, plus the observation pages left (from the API's total_results)
    at the photos each page has brought so far; so the bar does not read 95 % with one page
    of eight done. Bytes: those received, plus the photos not finished yet at the bytes a
    finished photo has cost so far (none until a photo has finished).
    """

    def __init__(self) -> None:
        self.queued = 0  # photos queued: retries of earlier runs, then those of each page
        self.from_pages = 0  # of which listed by the pages walked in this run
        self.pages = self.pages_left = 0
        self.finished = self.bytes = 0
        self._lock = threading.Lock()

    def paged(self, done: int, left: int) -> None:
        with self._lock:
            self.pages, self.pages_left = done, left

    def add(self, count: int) -> None:
        with self._lock:
            self.queued += count
            self.from_pages += count if self.pages else 0

    def finish(self, outcome: Outcome) -> int:
        """Count ``outcome``; the bytes it brought."""
        received = outcome.bytes if outcome.status == DONE and not outcome.already_there else 0
        with self._lock:
            self.finished += 1
            self.bytes += received
        return received

    def photos(self) -> int:
        with self._lock:
            if not self.pages:
                return self.queued
            return self.queued + round(self.pages_left * self.from_pages / self.pages)

    def total_bytes(self) -> int | None:
        photos = self.photos()
        with self._lock:
            if not self.finished:
                return None
            return self.bytes + round(max(0, photos - self.finished) * self.bytes / self.finished)


class TqdmReporter:
    """Two bars, photos and bytes, with rate and ETA; the taxon being paged as a prefix."""

    def __init__(self) -> None:
        self.taxon = ""
        self.job = JobEstimate()
        self.photos = tqdm(total=0, unit="photo", desc="photos", position=0, dynamic_ncols=True)
        self.bytes = tqdm(
            total=None,
            unit="B",
            unit_scale=True,
            unit_divisor=1000,
            desc="bytes",
            position=1,
            dynamic_ncols=True,
        )

    def listing(self, taxon: str) -> None:
        self.taxon = taxon
        self.photos.set_description_str(f"photos (paging {taxon})")

    def paged(self, done: int, left: int) -> None:
        """Observation pages of the whole job: done, and done and left together."""
        self.job.paged(done, left)
        self.photos.total = self.job.photos()
        self.photos.set_description_str(f"photos (paging {self.taxon}: {done}/{done + left} pages)")

    def queued(self, count: int) -> None:
        self.job.add(count)
        self.photos.total = self.job.photos()
        self.photos.refresh()

    def finished(self, outcome: Outcome) -> None:
        received = self.job.finish(outcome)
        self.bytes.total = self.job.total_bytes()
        self.photos.update(1)
        if received:
            self.bytes.update(received)

    def waiting(self, message: str) -> None:
        self.photos.write(message, file=sys.stderr)

    def close(self) -> None:
        self.photos.set_description_str("photos")
        self.photos.close()
        self.bytes.close()


class LogReporter:
    """For a stderr that is not a terminal (a log file, CI): a line every few seconds."""

    def __init__(self) -> None:
        self.job = JobEstimate()
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def listing(self, taxon: str) -> None:
        log.info("paging the observations of %s", taxon)

    def paged(self, done: int, left: int) -> None:
        self.job.paged(done, left)

    def queued(self, count: int) -> None:
        self.job.add(count)

    def finished(self, outcome: Outcome) -> None:
        self.job.finish(outcome)
        with self._lock:
            if time.monotonic() - self._last >= LOG_EVERY_SECONDS:
                self._last = time.monotonic()
                self._line()

    def _line(self) -> None:
        job = self.job
        pages = f"; {job.pages} observation pages done, {job.pages_left} left" if job.pages_left else ""
        about = "about " if job.pages_left else ""
        log.info(
            "%d of %s%d photos handled, %s downloaded%s",
            job.finished,
            about,
            job.photos(),
            format_size(job.bytes),
            pages,
        )

    def waiting(self, message: str) -> None:
        log.warning("%s", message)

    def close(self) -> None:
        if self.job.queued:
            self._line()


def fetch_reporter(out: Output) -> TqdmReporter | LogReporter | None:
    """Bars on a terminal, a log line every few seconds otherwise, nothing under --quiet."""
    if out.quiet:
        return None
    return TqdmReporter() if sys.stderr.isatty() else LogReporter()


def show_fetch(out: Output, report: FetchReport, data_dir: Path) -> None:
    out.say(
        f"{'taxon':<30} {'listed':>7} {'had':>7} {'new':>7} {'failed':>6} {'gone':>5} "
        f"{'skipped':>7} {'left':>6} {'bytes':>10}"
    )
    several = _several_sizes(report)
    for t in report.taxa:
        out.say(
            f"{_taxon_label(t, several):<30} {t.listed:>7} {t.had:>7} {t.downloaded:>7} {t.failed:>6} "
            f"{t.gone:>5} {sum(t.skipped.values()):>7} {t.left:>6} {format_size(t.bytes):>10}"
        )
    skipped = sum((t.skipped for t in report.taxa), Counter())
    out.say(
        f"{'total':<30} {report.total('listed'):>7} {report.total('had'):>7} "
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


def _taxon_label(report: TaxonReport, several_sizes: bool) -> str:
    """A taxon's name for a table row of 30 characters, with the size when a run has several."""
    if not several_sizes:
        return report.name[:30]
    suffix = f" ({report.size})"
    return report.name[: 30 - len(suffix)] + suffix


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


def show_dry_run(out: Output, report: FetchReport, options: FetchOptions, api_rate: float) -> None:
    out.say(f"{'taxon':<30} {'to download':>11} {'skipped':>7} {'about':>10}")
    several = _several_sizes(report)
    for t in report.taxa:
        out.say(
            f"{_taxon_label(t, several):<30} {t.queued:>11} {t.skipped.total():>7} "
            f"{format_size(t.estimated_bytes):>10}"
        )
    if several:  # each size by its own estimate
        for size in dict.fromkeys(t.size for t in report.taxa):
            of_size = [t for t in report.taxa if t.size == size]
            queued, estimated = sum(t.queued for t in of_size), sum(t.estimated_bytes for t in of_size)
            skipped_here = sum(t.skipped.total() for t in of_size)
            out.say(f"{'total ' + size:<30} {queued:>11} {skipped_here:>7} {format_size(estimated):>10}")
    total = report.total("estimated_bytes")
    skipped = sum(t.skipped.total() for t in report.taxa)
    out.say(f"{'total':<30} {report.total('queued'):>11} {skipped:>7} {format_size(total):>10}")
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


def _listing_cost(report: FetchReport, api_rate: float) -> str:
    """The API requests the listing took, and their time at --api-rate: a job's real cost."""
    pages = "1 observation page" if report.pages == 1 else f"{report.pages} observation pages"
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


def show_error(message: str) -> None:
    """The one line a failed command ends with."""
    click.echo(f"Error: {message}", err=True)


# records fetch --------------------------------------------------------------------------


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


# dataset export -------------------------------------------------------------------------


def export_command(data_dir: Path, out_dir: Path, options: ExportOptions) -> str:
    """The command line that makes this export again, for the dataset card."""
    words = ["dataset", "export", str(out_dir)]
    if options.splits:
        words += ["--split", ",".join(f"{name}={share:g}" for name, share in options.splits)]
    if options.splits or options.max_per_taxon:  # the groups and the seed decide splits and photos kept
        words += ["--group-by", options.group_by, "--seed", str(options.seed)]
    limits = (
        ("--min-per-taxon", options.min_per_taxon),
        ("--max-per-taxon", options.max_per_taxon),
        ("--size", options.size),
    )
    for option, value in limits:
        if value is not None:
            words += [option, str(value)]
    if options.copy:
        words.append("--copy")
    if options.format != "imagefolder":
        words += ["--format", options.format, "--shard-size", _size_word(options.shard_size)]
    return command_line(data_dir, *words)


def _size_word(num_bytes: int) -> str:
    """A byte size as --shard-size reads it back exactly: 500MB, or 123456B."""
    for unit, factor in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if num_bytes % factor == 0:
            return f"{num_bytes // factor}{unit}"
    return f"{num_bytes}B"


def show_export(out: Output, report: ExportReport, options: ExportOptions) -> None:
    how = f"{report.linked:,} hard-linked, {report.copied:,} copied" if report.added else "nothing new"
    if report.format != "imagefolder":  # shards: how many files were written
        how = f"{report.shards_written:,} files written, {report.shards_kept:,} unchanged"
    out.say(
        f"Exported {photos(report.photos)} of {len(report.taxa)} taxa ({report.size}) to {report.out_dir}: "
        f"{report.added:,} added ({how}), {report.kept:,} already there, {report.removed:,} removed."
    )
    for name in report.split_names:
        count = report.photos_in(name)
        out.say(f"  {name:<11} {count:>8,}  {count / report.photos:6.1%}")
    if report.left_out:
        listed = ", ".join(f"{label} ({n})" for label, n in report.left_out)
        out.say(f"Left out, fewer than --min-per-taxon {options.min_per_taxon} photos: {listed}")
    if report.missing_files:
        out.say(f"Left out: {photos(report.missing_files)} in photos.csv whose file is not in the data dir.")
    if report.unlisted_files:
        out.say(
            f"Left out: {photos(report.unlisted_files)} downloaded by a fetch that was stopped before it "
            "wrote photos.csv; run `inatdl photos fetch` again (it lists them, downloading nothing twice), "
            "then export again."
        )
    if report.capped:
        listed = ", ".join(f"{label} (of {n})" for label, n in report.capped)
        out.say(f"Kept at most {options.max_per_taxon} photos of {listed}.")
    if report.dropped_columns:
        out.say(
            f"Left out of metadata.csv (read as different types in different splits, which Hugging "
            f"Face's loader refuses; still in photos.csv): {', '.join(report.dropped_columns)}"
        )
    _show_short_splits(out, report, options)
    out.say(
        f"Dataset card {report.out_dir / 'README.md'}, credits {report.out_dir / 'CREDITS.md'}, "
        f"Croissant metadata {report.out_dir / 'croissant.json'}."
    )


def _show_short_splits(out: Output, report: ExportReport, options: ExportOptions) -> None:
    """Splits, or taxa in a split, that too few groups left empty."""
    if report.empty_splits:
        out.say(
            f"No photo in {' or '.join(report.empty_splits)}, so no folder for "
            f"{'them' if len(report.empty_splits) > 1 else 'it'}: too few "
            f"{options.group_by}s for the shares asked; fetch more photos or ask fewer splits."
        )
    if report.short:
        unit = options.group_by
        listed = "; ".join(
            f"{label} ({groups} {unit}{'s' if groups != 1 else ''}: none in {', '.join(empty)})"
            for label, groups, empty in report.short
        )
        out.say(f"Too few {unit}s for every split: {listed}")
