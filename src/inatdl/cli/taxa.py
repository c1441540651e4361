"""`taxa resolve` and `taxa observed`: the taxa to download, written as taxa.csv."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from inatdl.cli.options import OPEN_DATA, Number, name_given, quality_option, source_option
from inatdl.cli.settings import CONTEXT, Settings
from inatdl.constants import TAXA_FILE
from inatdl.files import ensure_data_dir
from inatdl.observed_taxa import RANK_SPECIES, RANKS, ObservedQuery, list_observed
from inatdl.output.taxa import show_observed, show_observed_page, show_taxa
from inatdl.species_file import read_species_csv
from inatdl.taxa import TaxonRow, resolve_species

log = logging.getLogger("inatdl")


@click.command("resolve", context_settings=CONTEXT)
@click.argument("species_csv", type=click.Path(path_type=Path))
@click.option(
    "--column",
    help="The column holding the scientific names [default: Species; a file without it is read as "
    "one name a line].",
)
@click.option("--refresh", is_flag=True, help="Ask the API again for names resolved before.")
@source_option
@click.pass_obj
def taxa_resolve(
    settings: Settings, species_csv: Path, column: str | None, refresh: bool, source: str
) -> None:
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
    if source == OPEN_DATA:
        from inatdl.opendata.resolve import resolve_from_open_data

        rows, dump_date = resolve_from_open_data(settings.open_data_dir, names, data_dir)
        show_taxa(settings.out, rows, data_dir / TAXA_FILE, f"in the open data of {dump_date}")
        return
    client = settings.client()
    done: list[TaxonRow] = []

    def show(row: TaxonRow) -> None:
        done.append(row)
        log.debug("%d/%d %s: %s", len(done), len(names), row.input_name, row.match)

    resolution = resolve_species(client, names, data_dir, refresh=refresh, on_name=show)
    show_taxa(settings.out, resolution.rows, data_dir / TAXA_FILE)
    resolution.raise_for_unasked()


@click.command("observed", context_settings=CONTEXT)
@click.option("--place-id", type=Number(min=1), required=True, help="The iNaturalist place (its number).")
@click.option(
    "--within",
    metavar="NAME",
    callback=name_given,
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
@quality_option("Quality grades of the observations to count, comma-separated.")
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
        show_observed_page(settings.out, page, pages)

    report = list_observed(settings.client(), query, data_dir, on_page=show)
    show_observed(settings.out, report, query, settings.data_dir)
