"""What `taxa resolve` and `taxa observed` show: the taxa table, the names left out, the
command that fetches the photos of a place."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from inatdl.constants import QUALITY_GRADES
from inatdl.observed_taxa import RANK_SPECIES, ObservedQuery, ObservedReport
from inatdl.opendata import INACTIVE
from inatdl.output.console import Output, command_line
from inatdl.taxa import ERROR, NOT_FOUND, TaxonRow


def show_taxa(out: Output, rows: Sequence[TaxonRow], path: Path, where: str = "on iNaturalist") -> None:
    """The taxa table and the names left out; ``where`` the names were looked for."""
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
    resolved = sum(r.resolved for r in rows)
    out.say()
    if missing:
        out.say(f"Not found {where} ({len(missing)}): {', '.join(missing)}")
    if unasked:
        out.say(f"Not asked, iNaturalist could not be reached ({len(unasked)}): {', '.join(unasked)}")
    common = [f"{r.input_name} (of {r.common_name_of})" for r in rows if r.common_name_of]
    inactive = [r.input_name for r in rows if r.match == INACTIVE]
    if inactive:
        out.say(
            f"Inactive names ({len(inactive)}): {', '.join(inactive)}; the open data holds no synonyms, "
            "so they are not fetched; the API route (--source api) would follow them to their current taxa."
        )
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
