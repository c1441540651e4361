"""What `dataset export` shows: the photos exported and left out, the splits' shares, and
the command line that makes the export again (for its dataset card)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from inatdl.output.console import Output, command_line, photos

if TYPE_CHECKING:  # for the annotations only: the command imports its modules when it runs
    from inatdl.export import ExportOptions, ExportReport


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
        files = "file" if report.shards_written == 1 else "files"
        how = f"{report.shards_written:,} {files} written, {report.shards_kept:,} unchanged"
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
    if report.fetch_running is not None:
        unlisted = report.unlisted_files
        since = f", leaving out {photos(unlisted)} downloaded since" if unlisted else ""
        out.say(
            f"A `photos fetch` is running in this data dir (pid {report.fetch_running}): exported the "
            f"photos of photos.csv as it last wrote it{since}; export again when it ends."
        )
    elif report.unlisted_files:
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
