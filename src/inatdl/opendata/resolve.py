"""`taxa resolve --source open-data`: names matched in the dump's taxa table, no API request.

The same matching as the API route (exact scientific name, ignoring case and runs of white
space; several active taxa of that name: the most observed, the others named) and the same
taxa.csv. The tables hold no synonyms, so a name that is only inactive is ``inactive``, with
no taxon id: the API route would follow it to its current taxon.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from inatdl.naming import normalise_name
from inatdl.opendata import INACTIVE
from inatdl.opendata.columnar import Copy, require_copy
from inatdl.opendata.engine import connect
from inatdl.taxa import AMBIGUOUS, EXACT, TaxonRow, write_taxa_csv

INACTIVE_NOTE = "an inactive name; the API route (--source api) follows it to its current taxon"

# Candidates for the names: the same key as naming.normalise_name (lower-cased here; the
# exact comparison is made again in Python with casefold).
FIND_NAMES_SQL = r"""
SELECT taxon_id, name, rank, active
FROM read_parquet($taxa)
WHERE lower(regexp_replace(trim(name), '\s+', ' ', 'g')) IN (SELECT unnest($keys))
ORDER BY taxon_id
"""

# Observations in the dump of each taxon asked, its descendants included: observations are
# counted per taxon first, then each count goes to every id of that taxon's lineage
# (ancestry, root to parent, then the taxon itself).
COUNT_OBSERVATIONS_SQL = """
WITH per_taxon AS (
    SELECT taxon_id, count(*) AS n FROM read_parquet($observations) GROUP BY taxon_id
), lineage AS (
    SELECT p.n,
           list_concat(coalesce(TRY_CAST(string_split(nullif(t.ancestry, ''), '/') AS BIGINT[]),
                                []::BIGINT[]), [t.taxon_id]) AS ids
    FROM per_taxon p JOIN read_parquet($taxa) t USING (taxon_id)
)
SELECT id, sum(n)::BIGINT AS observations
FROM (SELECT unnest(ids) AS id, n FROM lineage)
WHERE id IN (SELECT unnest($wanted))
GROUP BY id
"""


def find_names(
    copy: Copy, open_data_dir: Path, names: Sequence[str]
) -> dict[str, list[tuple[int, str, str, bool]]]:
    """The taxa bearing each name (by its key): (taxon_id, name, rank, active)."""
    keys = sorted({normalise_name(n) for n in names})
    con = connect(open_data_dir)
    try:
        found = con.execute(
            FIND_NAMES_SQL, {"taxa": str(copy.parquet("taxa")), "keys": [k.lower() for k in keys]}
        ).fetchall()
    finally:
        con.close()
    by_key: dict[str, list[tuple[int, str, str, bool]]] = {}
    for taxon_id, name, rank, active in found:
        key = normalise_name(name)
        if key in keys:
            by_key.setdefault(key, []).append((int(taxon_id), name, rank or "", bool(active)))
    return by_key


def count_observations(copy: Copy, open_data_dir: Path, taxon_ids: Sequence[int]) -> dict[int, int]:
    """Observations of each taxon in the dump, its descendants included."""
    if not taxon_ids:
        return {}
    con = connect(open_data_dir)
    try:
        rows = con.execute(
            COUNT_OBSERVATIONS_SQL,
            {
                "observations": str(copy.parquet("observations")),
                "taxa": str(copy.parquet("taxa")),
                "wanted": sorted(set(taxon_ids)),
            },
        ).fetchall()
    finally:
        con.close()
    return {int(taxon_id): int(count) for taxon_id, count in rows}


def resolve_from_open_data(
    open_data_dir: Path, names: Sequence[str], data_dir: Path
) -> tuple[list[TaxonRow], str]:
    """Resolve every name with the dump's taxa table and write taxa.csv; the rows, and the
    dump's date (a name not found is not in that dump)."""
    copy = require_copy(open_data_dir)
    by_key = find_names(copy, open_data_dir, names)
    active_ids = [t[0] for found in by_key.values() for t in found if t[3]]
    counts = count_observations(copy, open_data_dir, active_ids)
    rows = [_row(name, by_key.get(normalise_name(name), []), counts) for name in names]
    write_taxa_csv(data_dir / "taxa.csv", rows)
    return rows, copy.dump_date


def _row(input_name: str, found: list[tuple[int, str, str, bool]], counts: dict[int, int]) -> TaxonRow:
    """What one name resolves to, as taxa.choose_taxon decides on the API route."""
    active = sorted((t for t in found if t[3]), key=lambda t: (-counts.get(t[0], 0), t[0]))
    if not active:
        if found:
            return TaxonRow(input_name, match=INACTIVE, note=INACTIVE_NOTE)
        return TaxonRow(input_name)
    taxon_id, name, rank, _ = active[0]
    note = ""
    if len(active) > 1:
        note = "also taxon " + ", ".join(f"{t[0]} ({counts.get(t[0], 0)} obs.)" for t in active[1:])
    return TaxonRow(
        input_name,
        taxon_id=taxon_id,
        name=name,
        rank=rank,
        match=AMBIGUOUS if len(active) > 1 else EXACT,
        observations_count=counts.get(taxon_id, 0),
        note=note,
    )
