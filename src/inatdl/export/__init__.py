"""`dataset export`: the downloaded photos as a dataset that ML tools load as it is.

selection (photos.csv → the photos and their splits) → a writer a format (imagefolder,
webdataset, parquet: writers/) → the card, the credits and croissant.json from the report.
The data dir is only read. OUT_DIR keeps a small state file that marks it as inatdl's and
a list of what inatdl put there (outdir.py; compared with this export's files on disk, in
owned.py), so an export again updates it: new photos are added, photos gone from the data
dir removed, files nobody asked to change left alone.

Nothing here imports numpy, pandas or pyarrow at module level, so `photos fetch` starts without them.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

from inatdl.export.card import CARD_NAME, CREDITS_NAME, dataset_card, write_credits
from inatdl.export.croissant import CROISSANT_NAME, croissant
from inatdl.export.model import DEFAULT_SHARD_SIZE, ExportOptions, ExportReport
from inatdl.export.outdir import OutDirState, check_update, make_out_dir, read_out_dir_state, write_state
from inatdl.export.owned import FileLists
from inatdl.export.writers import FORMATS, OWNED_TEXTS, WriteContext, writer_class
from inatdl.files import atomic_write_text, atomic_writer
from inatdl.state import lock_holder

if TYPE_CHECKING:
    from inatdl.export.selected import Selection

__all__ = ["DEFAULT_SHARD_SIZE", "FORMATS", "ExportOptions", "ExportReport", "export_dataset"]


def export_dataset(data_dir: Path, out_dir: Path, options: ExportOptions) -> ExportReport:
    """Build or update the dataset in ``out_dir`` from the photos of ``data_dir``."""
    from inatdl.export.selection import select  # numpy: only when exporting

    previous = read_out_dir_state(out_dir, data_dir)
    if previous is not None:
        check_update(out_dir, previous, options)
    selection, report = select(data_dir, options, out_dir, writer_class(options.format).measure)
    report.fetch_running = lock_holder(data_dir)
    try:
        return _export(data_dir, out_dir, options, previous, selection, report)
    finally:
        selection.close()


def _export(
    data_dir: Path,
    out_dir: Path,
    options: ExportOptions,
    previous: OutDirState | None,
    selection: Selection,
    report: ExportReport,
) -> ExportReport:
    writer = writer_class(options.format)(
        WriteContext(data_dir, out_dir, selection, options, report, previous)
    )
    previous_files = previous.file_names() if previous else iter(())
    with FileLists(previous_files, itertools.chain(writer.plan(), OWNED_TEXTS)) as files:
        make_out_dir(out_dir)
        # Written first with both lists, so a crash midway leaves nothing that the next export forgets.
        write_state(out_dir, files.both(), options)

        def credits() -> None:  # written while the shards are (their workers on the other cores)
            with atomic_writer(out_dir / CREDITS_NAME) as handle:
                write_credits(handle, selection)

        writer.write(files.stale(), meanwhile=credits)
        title = out_dir.resolve().name
        atomic_write_text(out_dir / CARD_NAME, dataset_card(report, options, writer, title, selection))
        atomic_write_text(out_dir / CROISSANT_NAME, croissant(report, writer))
        write_state(out_dir, files.now(), options, **writer.state())
    return report
