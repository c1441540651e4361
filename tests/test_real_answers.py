"""The API answering as the real one does, not as the test data first assumed (issue 22).

Placeholders for photos without a file, names matched through another of their names,
servers that page smaller than asked, an API that cannot be reached while names are
resolved: each test here failed before the code learnt that answer.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from fakes import FakeClock
from inat_server import NO_FILE_PATH, Fault, InatServer
from world import (
    HYSSOPIFOLIUM,
    SALICARIA,
    TAXA_HEADER,
    build_lythrum,
    files,
    manifest,
    run,
    write_species,
    write_taxa,
)

from inatdl.cli import cli
from inatdl.constants import API_GIVE_UP_SECONDS
from inatdl.observations import observation_pages
from inatdl.taxa import choose_taxon, matched_by_another_name, name_kinds

PLACE = 128892


def read_taxa(data_dir: Path) -> list[dict[str, str]]:
    with (data_dir / "taxa.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_photo_without_a_file_is_a_placeholder_never_downloaded(inat: InatServer, tmp_path: Path) -> None:
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(10, "Lythrum salicaria", parent_id=1)
    inat.add_observation(100, 10, photos=[{"id": 1000}, {"id": 1001, "no_file": True}])
    data = tmp_path / "data"
    write_taxa(data, [(10, "Lythrum salicaria")])
    result = run(inat, data, "photos", "fetch", "--size", "medium")
    assert result.exit_code == 0, result.output
    assert list(files(data)) == ["photos/Lythrum_salicaria/1000_medium.jpg"]
    assert [row["photo_id"] for row in manifest(data)] == ["1000"]
    assert not inat.requests_to("/attachment_defaults") and NO_FILE_PATH.startswith("/attachment_defaults/")
    assert "Skipped: 1 placeholder" in result.stdout


def test_taxa_observed_pages_as_the_server_does_when_it_pages_smaller(
    inat: InatServer, tmp_path: Path
) -> None:
    inat.add_taxon(1, "Animalia", rank="kingdom")
    for i in range(1, 251):
        inat.add_taxon(1000 + i, f"Genus species{i}", parent_id=1)
        inat.add_observations(1000 + i, 1, first_id=i, place_ids=(PLACE,))
    inat.species_counts_max_per_page = 100  # asked for 500 a page, it answers 100 (and says so)
    result = run(inat, tmp_path / "d", "taxa", "observed", "--place-id", str(PLACE))
    assert result.exit_code == 0, result.output
    assert {r["taxon_id"] for r in read_taxa(tmp_path / "d")} == {str(1000 + i) for i in range(1, 251)}
    pages = inat.requests_to("/v1/observations/species_counts")
    assert [(r.query["page"], r.query["per_page"]) for r in pages] == [
        ("1", "500"),
        ("2", "500"),
        ("3", "500"),
    ]
    assert result.stderr.splitlines() == [f"Listing the taxa observed: page {n} of 3" for n in (1, 2, 3)]


def test_taxa_observed_warns_when_the_api_lists_fewer_taxa_than_it_counts(
    inat: InatServer, tmp_path: Path
) -> None:
    inat.add_taxon(1, "Animalia", rank="kingdom")
    for i in range(1, 4):
        inat.add_taxon(1000 + i, f"Genus species{i}", parent_id=1)
        inat.add_observations(1000 + i, 1, first_id=i, place_ids=(PLACE,))
    short = {
        "total_results": 4,
        "page": 1,
        "per_page": 500,
        "results": [{"count": 1, "taxon": inat.taxon(1001)}],
    }
    inat.add_fault(Fault("status", target="observations", status=200, body=json.dumps(short), times=1))
    result = run(inat, tmp_path / "d", "taxa", "observed", "--place-id", str(PLACE))
    assert result.exit_code == 0, result.output
    assert [r["taxon_id"] for r in read_taxa(tmp_path / "d")] == ["1001"]
    assert result.stderr.splitlines() == [
        "the API counted 4 taxa under this filter but listed 1; taxa.csv holds those listed"
    ]


def test_names_not_asked_for_want_of_a_network_are_not_blamed(inat: InatServer, tmp_path: Path) -> None:
    build_lythrum(inat)
    data = tmp_path / "d"
    species = write_species(tmp_path / "s.csv", ["lythrum salicaria", "lythrum theodori", "lythrum alatum"])
    clock = FakeClock()
    dead = "http://127.0.0.1:9/v1"  # the discard port: connection refused, as with no network
    offline = ["--data-dir", str(data), "--api-url", dead, "taxa", "resolve", str(species)]
    result = CliRunner().invoke(cli, offline, obj={"clock": clock, "timeout": (1.0, 1.0)})
    assert result.exit_code == 1
    assert [r["match"] for r in read_taxa(data)] == ["error", "error", "error"]
    assert (
        "Not asked, iNaturalist could not be reached (3): lythrum salicaria, lythrum theodori"
        in result.stdout
    )
    assert "Not found" not in result.stdout
    assert sum(clock.sleeps) < API_GIVE_UP_SECONDS + 10  # one name's retries, then none asked in vain

    result = run(inat, data, "photos", "fetch")
    assert result.exit_code == 1
    assert "iNaturalist could not be asked about its names" in result.stderr
    assert "run 'inatdl taxa resolve SPECIES_CSV' again" in result.stderr
    assert "check the names" not in result.stderr and not inat.requests

    result = run(inat, data, "taxa", "resolve", str(species))  # the network is back
    assert result.exit_code == 0, result.output
    assert [r["match"] for r in read_taxa(data)] == ["exact", "not_found", "exact"]
    assert sorted(r.query["q"] for r in inat.requests_to("/v1/taxa")) == [
        "lythrum alatum",
        "lythrum salicaria",
        "lythrum theodori",
    ]


def test_photos_fetch_says_which_names_are_still_to_resolve(inat: InatServer, tmp_path: Path) -> None:
    build_lythrum(inat)
    data = tmp_path / "d"
    data.mkdir()
    (data / "taxa.csv").write_text(
        f"{TAXA_HEADER}\nlythrum salicaria,{SALICARIA},Lythrum salicaria,species,exact,15\n"
        "lythrum alatum,,,,error,\n",
        encoding="utf-8",
    )
    result = run(inat, data, "photos", "fetch", "--size", "small")
    assert result.exit_code == 0, result.output
    assert (
        f"1 of the names in {data / 'taxa.csv'} are not resolved yet (iNaturalist could not be asked); "
        "run 'inatdl taxa resolve SPECIES_CSV' again to add their photos"
    ) in result.stderr
    assert {row["taxon_id"] for row in manifest(data)} == {str(SALICARIA)}


# Two results of a real /v1/taxa search (q=vespi, as recorded in pyinaturalist's tests), cut
# to the fields inatdl reads: one matched through a nominate trinomial, one through a
# French common name.
VESPICEPS = {
    "id": 752716,
    "name": "Pseudopolybia vespiceps",
    "rank": "species",
    "matched_term": "Pseudopolybia vespiceps vespiceps",
    "is_active": True,
    "observations_count": 4,
    "preferred_common_name": None,
}
VESPIFORMIS = {
    "id": 362871,
    "name": "Synanthedon vespiformis",
    "rank": "species",
    "matched_term": "Sésie vespiforme",
    "is_active": True,
    "observations_count": 39,
    "preferred_common_name": "Yellow-legged Clearwing",
}


def test_results_matched_through_another_name_are_told_from_exact_ones() -> None:
    found = [VESPIFORMIS, VESPICEPS]
    assert choose_taxon("Pseudopolybia vespiceps vespiceps", found).match == "not_found"
    assert matched_by_another_name("pseudopolybia  VESPICEPS vespiceps", found) == [VESPICEPS]
    assert matched_by_another_name("Sésie vespiforme", found) == [VESPIFORMIS]
    assert matched_by_another_name("Pseudopolybia vespiceps", found) == []  # its own name: exact
    named = {**VESPICEPS, "names": [{"name": "Pseudopolybia vespiceps vespiceps", "locale": "sci"}]}
    assert name_kinds("pseudopolybia vespiceps vespiceps", named) == {"sci"}
    assert name_kinds(
        "Sésie vespiforme", {**VESPIFORMIS, "names": [{"name": "Sésie vespiforme", "locale": "fr"}]}
    ) == {"common"}


def vespid_world(inat: InatServer) -> None:
    inat.add_taxon(2, "Animalia", rank="kingdom")
    inat.add_taxon(752716, "Pseudopolybia vespiceps", parent_id=2, observations_count=4)
    inat.add_taxon_name(752716, "Pseudopolybia vespiceps vespiceps")  # the nominate subspecies' name
    inat.add_taxon(
        362871,
        "Synanthedon vespiformis",
        parent_id=2,
        common_name="Yellow-legged Clearwing",
        observations_count=39,
    )
    inat.add_taxon_name(362871, "Sésie vespiforme", locale="fr")


def test_a_name_matched_through_another_scientific_name_is_followed_as_a_synonym(
    inat: InatServer, tmp_path: Path
) -> None:
    vespid_world(inat)
    build_lythrum(inat)
    names = ["Pseudopolybia vespiceps vespiceps", "sésie vespiforme", "lythrum tribracteatum"]
    species = write_species(tmp_path / "s.csv", names)
    result = run(inat, tmp_path / "d", "taxa", "resolve", str(species))
    assert result.exit_code == 0, result.output
    assert [(r["taxon_id"], r["name"], r["match"]) for r in read_taxa(tmp_path / "d")] == [
        ("752716", "Pseudopolybia vespiceps", "synonym"),
        ("", "", "not_found"),
        ("", "", "not_found"),
    ]
    assert "(another name of Pseudopolybia vespiceps)" in result.stdout
    assert "Not found on iNaturalist (2): sésie vespiforme, lythrum tribracteatum" in result.stdout
    assert (
        "Common names, not scientific names (2): sésie vespiforme (of Synanthedon vespiformis), "
        "lythrum tribracteatum (of Ammannia robusta)\n"
        "taxa resolve matches scientific names only: write the scientific name to take its taxon."
    ) in result.stdout
    # the names of a taxon are asked only when its search result cannot tell which it is
    lookups = [(r.path, r.query) for r in inat.requests_to("/v1/taxa/")]
    assert lookups == [("/v1/taxa/752716", {"all_names": "true"}), ("/v1/taxa/362871", {"all_names": "true"})]


def test_photos_fetch_pages_on_when_the_server_pages_smaller(inat: InatServer, tmp_path: Path) -> None:
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(10, "Lythrum salicaria", parent_id=1)
    inat.add_observations(10, 250, first_id=1000)
    inat.observations_max_per_page = 100  # asked for 200 a page, it answers 100 (and says so)
    data = tmp_path / "data"
    write_taxa(data, [(10, "Lythrum salicaria")])
    result = run(inat, data, "photos", "fetch", "--size", "square")
    assert result.exit_code == 0, result.output
    assert len(files(data)) == 250 and len(manifest(data)) == 250
    pages = inat.requests_to("/v1/observations")
    assert [(r.query["id_above"], r.query["per_page"]) for r in pages] == [
        ("0", "200"),
        ("1099", "200"),
        ("1199", "200"),
    ]


def test_a_common_name_given_to_within_is_named_as_such(inat: InatServer, tmp_path: Path) -> None:
    build_lythrum(inat)  # Plantae's common name is "Plants"
    result = run(inat, tmp_path / "d", "taxa", "observed", "--place-id", str(PLACE), "--within", "plants")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: --within 'plants' is a common name of Plantae; give the scientific name (--within Plantae)\n"
    )


def test_refresh_without_a_network_keeps_what_taxa_csv_knew(inat: InatServer, tmp_path: Path) -> None:
    build_lythrum(inat)
    data = tmp_path / "d"
    species = write_species(tmp_path / "s.csv", ["lythrum salicaria", "lythrum theodori"])
    assert run(inat, data, "taxa", "resolve", str(species)).exit_code == 0
    write_species(species, ["lythrum salicaria", "lythrum theodori", "lythrum alatum"])
    offline = ["--data-dir", str(data), "--api-url", "http://127.0.0.1:9/v1", "taxa", "resolve", str(species)]
    result = CliRunner().invoke(
        cli, [*offline, "--refresh"], obj={"clock": FakeClock(), "timeout": (1.0, 1.0)}
    )
    assert result.exit_code == 1
    # the answer taxa.csv had is kept; the names it had none for are still to ask
    assert [(r["taxon_id"], r["match"]) for r in read_taxa(data)] == [
        (str(SALICARIA), "exact"),
        ("", "error"),
        ("", "error"),
    ]
    assert (
        "Not asked, iNaturalist could not be reached (2): lythrum theodori, lythrum alatum" in result.stdout
    )


class SmallPages:
    """/observations by id_above, 100 a page whatever is asked, saying so in per_page but
    giving no total_results (as a proxy or an older server might)."""

    def __init__(self, count: int) -> None:
        self.ids = list(range(1, count + 1))
        self.asked: list[int] = []

    def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        self.asked.append(params["id_above"])
        above = [i for i in self.ids if i > params["id_above"]][:100]
        return {"page": 1, "per_page": 100, "results": [{"id": i} for i in above]}


def test_without_a_total_the_walk_goes_by_the_answers_page_size() -> None:
    api = SmallPages(250)
    pages = list(observation_pages(api, {}, 0))  # type: ignore[arg-type]
    assert [len(page) for page in pages] == [100, 100, 50]
    assert api.asked == [0, 100, 200]  # the short page of 50 is the last: no request more


def test_a_name_split_into_several_taxa_takes_the_most_observed(inat: InatServer, tmp_path: Path) -> None:
    inat.add_taxon(2, "Plantae", rank="kingdom")
    inat.add_taxon(31, "Lythrum minus", parent_id=2, observations_count=5)
    inat.add_taxon(32, "Lythrum majus", parent_id=2, observations_count=70)
    inat.add_taxon(30, "Lythrum splitum", parent_id=2, is_active=False, current_synonymous_taxon_ids=[31, 32])
    species = write_species(tmp_path / "s.csv", ["lythrum splitum"])
    result = run(inat, tmp_path / "d", "taxa", "resolve", str(species))
    assert result.exit_code == 0, result.output
    assert [(r["taxon_id"], r["name"], r["match"]) for r in read_taxa(tmp_path / "d")] == [
        ("32", "Lythrum majus", "synonym")
    ]
    assert "(inactive name, now Lythrum majus; also taxon 31 (5 obs.))" in result.stdout


def test_two_names_of_one_taxon_fetch_its_photos_once(inat: InatServer, tmp_path: Path) -> None:
    build_lythrum(inat)
    inat.add_observations(HYSSOPIFOLIUM, 3, first_id=300)
    data = tmp_path / "d"
    species = write_species(
        tmp_path / "s.csv", ["lythrum hyssopifolium", "lythrum hyssopifolia"]
    )  # a synonym
    assert run(inat, data, "taxa", "resolve", str(species)).exit_code == 0
    assert [r["taxon_id"] for r in read_taxa(data)] == [str(HYSSOPIFOLIUM)] * 2
    result = run(inat, data, "photos", "fetch", "--size", "small")
    assert result.exit_code == 0, result.output
    assert sorted(row["photo_id"] for row in manifest(data)) == ["3000", "3010", "3020"]
    pages = inat.requests_to("/v1/observations")
    assert [r.query["taxon_id"] for r in pages] == [str(HYSSOPIFOLIUM)]
    assert len(inat.photo_requests()) == 3
    assert sum(line.startswith("Lythrum hyssopifolium ") for line in result.stdout.splitlines()) == 1
