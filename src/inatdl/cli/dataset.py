"""`dataset export`: the downloaded photos as a dataset ML tools load as it is."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from inatdl.cli.options import Number, ShardSize, SplitShares, seed_option
from inatdl.cli.settings import CONTEXT, Settings, sigterm_as_interrupt
from inatdl.constants import PHOTO_SIZES
from inatdl.export.writers import FORMATS as EXPORT_FORMATS
from inatdl.output.dataset import export_command, show_export
from inatdl.splits import GROUP_BY


@click.command("export", context_settings=CONTEXT)
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
@seed_option
@click.option("--min-per-taxon", type=Number(min=1), help="Leave out taxa with fewer photos.")
@click.option(
    "--max-per-taxon",
    type=Number(min=1),
    help="Keep at most N photos a taxon, one of each observation first; the same ones every time.",
)
@click.option(
    "--size",
    type=click.Choice(list(PHOTO_SIZES), case_sensitive=False),
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
    command = export_command(settings.data_dir, out_dir, options)
    with sigterm_as_interrupt():  # the workers writing shards stopped, their files removed
        report = export_dataset(settings.data_dir, out_dir, dataclasses.replace(options, command=command))
    show_export(settings.out, report, options)
