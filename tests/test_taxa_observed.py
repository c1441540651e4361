"""`inatdl taxa observed`, over real HTTP against the test server's species_counts."""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import FakeClock
from inat_server import Fault, InatServer
from world import TAXA_HEADER, run, write_taxa

from inatdl.cli import cli

PLACE, ELSEWHERE = 128892, 999
ANIMALIA, FISHES, GOBIUS, NIGER, JOZO = 1, 2, 11, 12, 13
PAGANELLUS, PAGANELLUS_VAR, COBITIS, COBITIS_SUBSP, COBITIS_VAR = 14, 15, 16, 17, 18
COBITIS_SUBSP2, COBITIS_VAR2 = 19, 21
AURATUS, AURATUS_SUBSP, AURATUS_VAR, AURATUS_FORM = 24, 25, 26, 27
PARABLENNIUS, PLANTAE, POSIDONIA, OCEANICA = 20, 100, 101, 102


def build_reserve(inat: InatServer) -> None:
    """A marine reserve (place 128892) with the traps of leaf counts.

    Gobius niger: 3 observations, and 2 of its subspecies jozo; G. paganellus only through
    a variety; G. cobitis only through varieties of two subspecies (the API lists the
    subspecies); G. auratus only through a form of a variety of a subspecies (the API lists
    the variety); a blenny identified only to its genus; Posidonia oceanica 4 research and
    1 casual. Not counted: an observation without photos, two from another place.
    """
    inat.add_taxon(ANIMALIA, "Animalia", rank="kingdom")
    inat.add_taxon(FISHES, "Actinopterygii", rank="class", parent_id=ANIMALIA)
    inat.add_taxon(GOBIUS, "Gobius", rank="genus", parent_id=FISHES)
    inat.add_taxon(NIGER, "Gobius niger", parent_id=GOBIUS, common_name="Black Goby")
    inat.add_taxon(JOZO, "Gobius niger jozo", rank="subspecies", parent_id=NIGER)
    inat.add_taxon(PAGANELLUS, "Gobius paganellus", parent_id=GOBIUS)
    inat.add_taxon(PAGANELLUS_VAR, "Gobius paganellus lividus", rank="variety", parent_id=PAGANELLUS)
    inat.add_taxon(COBITIS, "Gobius cobitis", parent_id=GOBIUS)
    inat.add_taxon(COBITIS_SUBSP, "Gobius cobitis maior", rank="subspecies", parent_id=COBITIS)
    inat.add_taxon(COBITIS_VAR, "Gobius cobitis maior pallida", rank="variety", parent_id=COBITIS_SUBSP)
    inat.add_taxon(COBITIS_SUBSP2, "Gobius cobitis minor", rank="subspecies", parent_id=COBITIS)
    inat.add_taxon(COBITIS_VAR2, "Gobius cobitis minor obscura", rank="variety", parent_id=COBITIS_SUBSP2)
    inat.add_taxon(AURATUS, "Gobius auratus", parent_id=GOBIUS)
    inat.add_taxon(AURATUS_SUBSP, "Gobius auratus a", rank="subspecies", parent_id=AURATUS)
    inat.add_taxon(AURATUS_VAR, "Gobius auratus a b", rank="variety", parent_id=AURATUS_SUBSP)
    inat.add_taxon(AURATUS_FORM, "Gobius auratus a b c", rank="form", parent_id=AURATUS_VAR)
    inat.add_taxon(PARABLENNIUS, "Parablennius", rank="genus", parent_id=FISHES)
    inat.add_taxon(PLANTAE, "Plantae", rank="kingdom")
    inat.add_taxon(POSIDONIA, "Posidonia", rank="genus", parent_id=PLANTAE)
    inat.add_taxon(OCEANICA, "Posidonia oceanica", parent_id=POSIDONIA)
    here = {"place_ids": (PLACE, 1)}
    inat.add_observations(NIGER, 3, first_id=1, **here)
    inat.add_observations(JOZO, 2, first_id=4, **here)
    inat.add_observations(PAGANELLUS_VAR, 2, first_id=6, **here)
    inat.add_observations(COBITIS_VAR, 1, first_id=8, **here)
    inat.add_observations(COBITIS_VAR2, 1, first_id=19, **here)
    inat.add_observations(AURATUS_FORM, 1, first_id=20, **here)
    inat.add_observations(PARABLENNIUS, 2, first_id=9, **here)
    inat.add_observations(OCEANICA, 5, first_id=11, quality_grades=("research",) * 4 + ("casual",), **here)
    inat.add_observation(16, NIGER, photos=[], place_ids=(PLACE,))
    inat.add_observations(NIGER, 2, first_id=17, place_ids=(ELSEWHERE,))


@pytest.fixture
def reserve(inat: InatServer) -> InatServer:
    build_reserve(inat)
    return inat


def read_taxa(data_dir: Path) -> list[dict[str, str]]:
    with (data_dir / "taxa.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def rows(data_dir: Path) -> list[tuple[str, str, str, str, str, str]]:
    return [tuple(r.values()) for r in read_taxa(data_dir)]  # type: ignore[misc]


def observed_row(taxon_id: int, name: str, count: int, rank: str = "species") -> tuple[str, ...]:
    return (name, str(taxon_id), name, rank, "observed", str(count))


def test_species_of_a_place_with_their_varieties_folded_in(reserve: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run(reserve, data, "taxa", "observed", "--place-id", str(PLACE))
    assert result.exit_code == 0, result.output
    assert (data / "taxa.csv").read_text(encoding="utf-8").splitlines()[0] == TAXA_HEADER
    assert rows(data) == [
        observed_row(NIGER, "Gobius niger", 5),  # 3 of the species and 2 of its subspecies
        observed_row(OCEANICA, "Posidonia oceanica", 5),
        observed_row(COBITIS, "Gobius cobitis", 2),  # the API lists its 2 subspecies: folded, named
        observed_row(PAGANELLUS, "Gobius paganellus", 2),  # observed only as its variety
        observed_row(AURATUS, "Gobius auratus", 1),  # listed as a variety: two levels up
    ]
    counts, lookups = reserve.requests_to("/v1/observations/species_counts"), reserve.requests_to("/v1/taxa")
    assert [r.query for r in counts] == [
        {"place_id": str(PLACE), "photos": "true", "hrank": "species", "per_page": "500", "page": "1"}
    ]
    # the species not in the answer, and the subspecies on the way to one, asked by id
    assert [r.path for r in lookups] == [f"/v1/taxa/{COBITIS},{AURATUS_SUBSP}", f"/v1/taxa/{AURATUS}"]
    assert len(reserve.requests) == 3
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["taxon_id", "name", "rank", "observations"]
    assert lines[1].split() == [str(NIGER), "Gobius", "niger", "species", "5"]
    assert f"Wrote {data / 'taxa.csv'} (5 species observed in place {PLACE})." in lines
    command = ["inatdl", "--data-dir", str(data), "photos", "fetch", "--place-id", str(PLACE)]
    assert lines[-2:] == ["Fetch their photos from that place with:", "  " + shlex.join(command)]


def test_within_a_taxon_and_quality(reserve: InatServer, tmp_path: Path) -> None:
    args = ["taxa", "observed", "--place-id", str(PLACE), "--within", "actinopterygii"]
    result = run(reserve, tmp_path / "d", *args, "--quality", "research,needs_id")
    assert result.exit_code == 0, result.output
    assert [r[1] for r in rows(tmp_path / "d")] == [str(NIGER), str(COBITIS), str(PAGANELLUS), str(AURATUS)]
    searches = [r for r in reserve.requests_to("/v1/taxa") if r.path == "/v1/taxa"]
    assert [r.query["q"] for r in searches] == ["actinopterygii"]
    (count,) = reserve.requests_to("/v1/observations/species_counts")
    assert count.query["taxon_id"] == str(FISHES)
    assert count.query["quality_grade"] == "research,needs_id"
    assert "(4 species under Actinopterygii observed in place 128892)" in result.stdout
    assert result.stdout.rstrip().endswith("--place-id 128892 --quality research,needs_id")
    result = run(reserve, tmp_path / "d", "taxa", "observed", "--place-id", str(PLACE), "--quality", "casual")
    assert rows(tmp_path / "d") == [observed_row(OCEANICA, "Posidonia oceanica", 1)]


def test_rank_any_lists_the_leaves_as_the_api_does(reserve: InatServer, tmp_path: Path) -> None:
    result = run(reserve, tmp_path / "d", "taxa", "observed", "--place-id", str(PLACE), "--rank", "any")
    assert result.exit_code == 0, result.output
    assert rows(tmp_path / "d") == [
        observed_row(NIGER, "Gobius niger", 5),
        observed_row(OCEANICA, "Posidonia oceanica", 5),
        observed_row(PAGANELLUS, "Gobius paganellus", 2),
        observed_row(PARABLENNIUS, "Parablennius", 2, rank="genus"),
        observed_row(AURATUS_VAR, "Gobius auratus a b", 1, rank="variety"),
        observed_row(COBITIS_SUBSP, "Gobius cobitis maior", 1, rank="subspecies"),
        observed_row(COBITIS_SUBSP2, "Gobius cobitis minor", 1, rank="subspecies"),
    ]
    (count,) = reserve.requests_to("/v1/observations/species_counts")
    assert "hrank" not in count.query
    assert len(reserve.requests) == 1
    assert "(7 taxa observed in place 128892)" in result.stdout


def test_pages_of_500_and_species_names_asked_30_at_a_time(inat: InatServer, tmp_path: Path) -> None:
    inat.add_taxon(1, "Animalia", rank="kingdom")
    inat.add_taxon(2, "Genus", rank="genus", parent_id=1)
    for i in range(1, 1001):  # 1000 species (two full pages); 35 observed only as a variety of a subspecies
        species, subspecies, variety = 1000 + i, 10_000 + i, 20_000 + i
        inat.add_taxon(species, f"Genus species{i}", parent_id=2)
        observed = species
        if i > 965:
            inat.add_taxon(subspecies, f"Genus species{i} sub", rank="subspecies", parent_id=species)
            inat.add_taxon(variety, f"Genus species{i} sub var", rank="variety", parent_id=subspecies)
            observed = variety
        inat.add_observations(observed, 1 + (i % 3), first_id=i * 10, place_ids=(PLACE,))
    result = run(inat, tmp_path / "d", "taxa", "observed", "--place-id", str(PLACE))
    assert result.exit_code == 0, result.output
    taxa = read_taxa(tmp_path / "d")
    assert len(taxa) == 1000
    assert {r["taxon_id"] for r in taxa} == {str(1000 + i) for i in range(1, 1001)}
    assert {r["rank"] for r in taxa} == {"species"}
    assert {r["name"] for r in taxa if r["taxon_id"] == "2000"} == {"Genus species1000"}
    assert [int(r["observations_count"]) for r in taxa] == sorted(
        (1 + (i % 3) for i in range(1, 1001)), reverse=True
    )
    assert result.stderr.splitlines() == [f"Listing the taxa observed: page {n} of 2" for n in (1, 2)]
    pages = inat.requests_to("/v1/observations/species_counts")
    assert [(r.query["page"], r.query["per_page"]) for r in pages] == [
        ("1", "500"),
        ("2", "500"),
    ]
    lookups = [r.path.rsplit("/", 1)[1].split(",") for r in inat.requests_to("/v1/taxa/")]
    assert [len(ids) for ids in lookups] == [30, 5]
    assert all(r.status == 200 for r in inat.requests)


def test_nothing_observed_is_an_error_naming_the_place(reserve: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "d"
    write_taxa(data, [(NIGER, "Gobius niger")])
    before = (data / "taxa.csv").read_bytes()
    result = run(reserve, data, "taxa", "observed", "--place-id", "4242")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no species was observed with photos in place 4242; check the place id "
        "(https://www.inaturalist.org/places/4242) and the filters\n"
    )
    assert (data / "taxa.csv").read_bytes() == before
    args = ["--place-id", str(PLACE), "--within", "Plantae", "--quality", "needs_id"]
    result = run(reserve, data, "taxa", "observed", *args)
    assert result.exit_code == 1
    assert "no species under Plantae was observed with photos of quality needs_id in place 128892" in (
        result.stderr
    )


def test_an_unknown_within_name_is_a_clear_error(reserve: InatServer, tmp_path: Path) -> None:
    result = run(reserve, tmp_path / "d", "taxa", "observed", "--place-id", str(PLACE), "--within", "Plantea")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: --within 'Plantea': iNaturalist has no taxon of that scientific name"
    )
    assert result.stderr.count("\n") == 1
    assert not reserve.requests_to("/v1/observations")
    assert not (tmp_path / "d" / "taxa.csv").exists()


def test_usage_errors(reserve: InatServer, tmp_path: Path) -> None:
    assert run(reserve, tmp_path, "taxa", "observed").exit_code == 2
    bad_options = [["--place-id", "0"], ["--place-id", "x"], ["--place-id", "1", "--rank", "genus"]]
    bad_options += [["--place-id", "1", "--within", blank] for blank in ("", "  ")]  # not "no filter"
    for bad in bad_options:
        result = run(reserve, tmp_path, "taxa", "observed", *bad)
        assert result.exit_code == 2, bad
    assert not reserve.requests


def test_api_failure_leaves_taxa_csv_as_it_was(reserve: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "d"
    write_taxa(data, [(NIGER, "Gobius niger")])
    before = (data / "taxa.csv").read_bytes()
    reserve.add_fault(Fault("status", target="observations", status=503, first_attempts=2))
    result = run(reserve, data, "taxa", "observed", "--place-id", str(PLACE))
    assert result.exit_code == 0, result.output  # retried
    assert len(read_taxa(data)) == 5
    reserve.clear_faults()
    write_taxa(data, [(NIGER, "Gobius niger")])
    reserve.add_fault(Fault("status", target="taxa", status=404))
    result = run(reserve, data, "taxa", "observed", "--place-id", str(PLACE))
    assert result.exit_code == 1 and "HTTP 404" in result.stderr
    assert (data / "taxa.csv").read_bytes() == before


def test_then_photos_fetch_from_that_place(reserve: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert run(reserve, data, "taxa", "observed", "--place-id", str(PLACE)).exit_code == 0
    result = run(reserve, data, "photos", "fetch", "--place-id", str(PLACE), "--size", "small")
    assert result.exit_code == 0, result.output
    got = sorted(p.relative_to(data / "photos").as_posix() for p in (data / "photos").rglob("*.jpg"))
    assert got == sorted(
        [f"Gobius_niger/{obs * 10}_small.jpg" for obs in range(1, 6)]
        + [f"Gobius_paganellus/{obs * 10}_small.jpg" for obs in (6, 7)]
        + ["Gobius_cobitis/80_small.jpg", "Gobius_cobitis/190_small.jpg", "Gobius_auratus/200_small.jpg"]
        + [f"Posidonia_oceanica/{obs * 10}_small.jpg" for obs in range(11, 16)]
    )


def test_a_species_the_api_does_not_give_leaves_its_leaf_as_it_is(
    reserve: InatServer, tmp_path: Path
) -> None:
    empty = '{"total_results": 0, "page": 1, "per_page": 30, "results": []}'
    reserve.add_fault(Fault("status", target="taxa", status=200, body=empty, times=1))
    result = run(reserve, tmp_path / "d", "taxa", "observed", "--place-id", str(PLACE))
    assert result.exit_code == 0, result.output
    assert rows(tmp_path / "d")[2:] == [
        observed_row(PAGANELLUS, "Gobius paganellus", 2),
        observed_row(AURATUS_VAR, "Gobius auratus a b", 1, rank="variety"),
        observed_row(COBITIS_SUBSP, "Gobius cobitis maior", 1, rank="subspecies"),
        observed_row(COBITIS_SUBSP2, "Gobius cobitis minor", 1, rank="subspecies"),
    ]
    assert len(reserve.requests_to("/v1/taxa/")) == 1  # not asked again and again
    assert "the species of Gobius cobitis maior is not known to the API; listed as it is" in result.stderr


def test_taxa_resolve_afterwards_asks_again_for_observed_names(reserve: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "d"
    assert run(reserve, data, "taxa", "observed", "--place-id", str(PLACE)).exit_code == 0
    species = tmp_path / "species.txt"
    species.write_text("Gobius niger\n", encoding="utf-8")
    reserve.clear_requests()
    assert run(reserve, data, "taxa", "resolve", str(species)).exit_code == 0
    assert [r.query["q"] for r in reserve.requests_to("/v1/taxa")] == ["Gobius niger"]
    assert rows(data) == [("Gobius niger", str(NIGER), "Gobius niger", "species", "exact", "8")]  # everywhere


def test_a_leaf_seen_twice_as_the_pages_shift_counts_once(inat: InatServer, tmp_path: Path) -> None:
    inat.add_taxon(1, "Animalia", rank="kingdom")
    for i in range(1, 502):
        inat.add_taxon(1000 + i, f"Genus species{i}", parent_id=1)
        inat.add_observations(1000 + i, 1, first_id=i, place_ids=(PLACE,))
    shifted = {
        "total_results": 501,
        "page": 2,
        "per_page": 500,
        "results": [{"count": 1, "taxon": inat.taxon(1500)}],
    }
    inat.add_fault(
        Fault("status", target="observations", status=200, body=json.dumps(shifted), path_contains="page=2")
    )
    result = run(inat, tmp_path / "d", "taxa", "observed", "--place-id", str(PLACE))
    assert result.exit_code == 0, result.output
    taxa = read_taxa(tmp_path / "d")
    assert len(taxa) == 500 and {r["observations_count"] for r in taxa} == {"1"}
    assert [r.query["page"] for r in inat.requests_to("/v1/observations/species_counts")] == ["1", "2"]


def test_in_the_default_data_dir_the_command_is_the_plain_one(
    reserve: InatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = [
        "--api-url",
        reserve.api_url,
        "taxa",
        "observed",
        "--place-id",
        str(PLACE),
        "--quality",
        "research",
    ]
    result = CliRunner().invoke(cli, args, obj={"clock": FakeClock()})
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "  inatdl photos fetch --place-id 128892 --quality research"
    assert len(read_taxa(tmp_path / "inatdl-data")) == 5


def test_a_within_name_that_several_taxa_bear_says_which_one_was_taken(
    reserve: InatServer, tmp_path: Path
) -> None:
    reserve.add_taxon(200, "Gobius", rank="genus", parent_id=PLANTAE, observations_count=1)  # a homonym
    result = run(reserve, tmp_path / "d", "taxa", "observed", "--place-id", str(PLACE), "--within", "Gobius")
    assert result.exit_code == 0, result.output
    # on stdout, seen on a terminal too (where log lines below warnings are not shown)
    assert f"--within Gobius: taxon {GOBIUS} Gobius (also taxon 200 (1 obs.))" in result.stdout
