"""`taxa resolve --source open-data`: the API route's matching and taxa.csv, from the dump's
taxa table, with no API request."""

from __future__ import annotations

from pathlib import Path

from inat_server import InatServer
from opendata_world import run_open
from world import HYSSOPIFOLIUM, SALICARIA, VIRGATUM, build_lythrum, write_species

NAMES = [
    "lythrum  SALICARIA",
    "Lythrum alatum",
    "Lythrum hyssopifolia",  # inactive: the API follows it to Lythrum hyssopifolium
    "Lythrum virgatum",  # two active taxa of this name
    "Lythrum tribracteatum",  # a common name only
]


def test_names_resolve_from_the_taxa_table_without_the_api(inat: InatServer, tmp_path: Path) -> None:
    build_lythrum(inat)
    species = write_species(tmp_path / "species.csv", NAMES)
    assert run_open(inat, tmp_path, "opendata", "sync").exit_code == 0
    inat.clear_requests()
    result = run_open(inat, tmp_path, "taxa", "resolve", str(species), "--source", "open-data")
    assert result.exit_code == 0, result.output
    assert inat.requests == []  # neither the API nor the open data's host: the local copy answers
    taxa_csv = (tmp_path / "data" / "taxa.csv").read_text().splitlines()
    assert taxa_csv == [
        "input_name,taxon_id,name,rank,match,observations_count",
        f"lythrum  SALICARIA,{SALICARIA},Lythrum salicaria,species,exact,15",
        "Lythrum alatum,61300,Lythrum alatum,species,exact,5",
        "Lythrum hyssopifolia,,,,inactive,",
        f"Lythrum virgatum,{VIRGATUM},Lythrum virgatum,species,ambiguous,0",
        "Lythrum tribracteatum,,,,not_found,",
    ]
    assert "(also taxon 61305 (0 obs.))" in result.stdout
    assert "Not found in the open data of 2026-11-27 (1): Lythrum tribracteatum" in result.stdout
    assert "iNaturalist" not in result.stdout  # only its dump was asked
    assert (
        "Inactive names (1): Lythrum hyssopifolia; the open data holds no synonyms, so they are not "
        "fetched; the API route (--source api) would follow them to their current taxa."
    ) in result.stdout
    assert "(3 of 5 names resolved)" in result.stdout
    # the API route resolves the same names to the same taxa, and follows the inactive one
    api = run_open(inat, tmp_path, "taxa", "resolve", str(species), "--refresh")
    assert api.exit_code == 0, api.output
    rows = (tmp_path / "data" / "taxa.csv").read_text().splitlines()
    assert [r.split(",")[1] for r in rows[1:]] == [
        str(SALICARIA), "61300", str(HYSSOPIFOLIUM), str(VIRGATUM), "",
    ]  # fmt: skip


def test_without_a_synced_dump_the_error_names_opendata_sync(inat: InatServer, tmp_path: Path) -> None:
    species = write_species(tmp_path / "species.csv", NAMES)
    result = run_open(inat, tmp_path, "taxa", "resolve", str(species), "--source", "open-data")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no synced open data in {tmp_path / 'open-data'}; run `inatdl opendata sync` first "
        "(or point --open-data-dir at the folder it synced)\n"
    )
    assert inat.requests == []
