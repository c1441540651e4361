"""`inatdl records fetch`, over real HTTP against the test server: the Darwin Core rows, the
requests that made them, and the reruns that ask only for what is new."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fakes import FakeClock
from inat_server import Fault, InatServer, RecordedRequest
from world import run, write_taxa

from inatdl.client import ApiClient, build_session
from inatdl.observations import Filters
from inatdl.records_fetch import RecordsQuery, fetch_records

PLACE, ELSEWHERE = 128892, 999
ANIMALIA, FISHES, GOBIUS, NIGER, JOZO, PLANTAE, OCEANICA = 1, 2, 11, 12, 13, 100, 102
HEADER = (
    "occurrenceID,catalogNumber,basisOfRecord,scientificName,taxonID,taxonRank,vernacularName,eventDate,"
    "decimalLatitude,decimalLongitude,coordinateUncertaintyInMeters,informationWithheld,recordedBy,"
    "identificationVerificationStatus,license,rightsHolder,associatedMedia"
)


def build_reserve(inat: InatServer) -> None:
    """Place 128892 and its records, each with something a record must say right.

    1: Gobius niger, research, two photos (cc-by, all rights reserved), a time, a named
       observer, cc-by-nc; 2: its subspecies jozo, casual, no photo, no time, obscured at
       the observer's request (28 km), no licence; 3: Posidonia oceanica, obscured as a
       threatened taxon; 4: private (no coordinates), a flagged photo; 5: elsewhere.
    """
    inat.add_taxon(ANIMALIA, "Animalia", rank="kingdom")
    inat.add_taxon(FISHES, "Actinopterygii", rank="class", parent_id=ANIMALIA)
    inat.add_taxon(GOBIUS, "Gobius", rank="genus", parent_id=FISHES)
    inat.add_taxon(NIGER, "Gobius niger", parent_id=GOBIUS, common_name="Black Goby")
    inat.add_taxon(JOZO, "Gobius niger jozo", rank="subspecies", parent_id=NIGER)
    inat.add_taxon(PLANTAE, "Plantae", rank="kingdom")
    inat.add_taxon(OCEANICA, "Posidonia oceanica", parent_id=PLANTAE, common_name="Neptune Grass")
    here = (PLACE, 1)
    inat.add_observation(
        1,
        NIGER,
        photos=[{"id": 10, "license_code": "cc-by"}, {"id": 11, "license_code": None}],
        license_code="cc-by-nc",
        observed_on="2021-06-01",
        latitude=38.471234567890123,
        longitude=-8.98,
        place_ids=here,
        user_login="diver",
    )
    inat.set_observation_details(
        1, time_observed_at="2021-06-01T10:15:00+01:00", user_name="Ana Diver", species_guess="goby"
    )
    inat.add_observation(
        2,
        JOZO,
        photos=[],
        license_code=None,
        quality_grade="casual",
        observed_on="2021-07-02",
        place_ids=here,
    )
    inat.set_observation_details(2, time_observed_at=None, community_taxon_id=NIGER)
    inat.set_coordinates_privacy(2, accuracy=28_313, geoprivacy="obscured")
    inat.add_observation(
        3, OCEANICA, photos=[{"id": 30, "license_code": "cc0"}], place_ids=here, latitude=38.5, longitude=-9
    )
    inat.set_coordinates_privacy(3, accuracy=20, taxon_geoprivacy="obscured")
    inat.add_observation(
        4,
        NIGER,
        photos=[{"id": 40, "flagged": True}],
        place_ids=here,
        license_code="cc0",
        quality_grade="needs_id",
    )
    inat.set_coordinates_privacy(4, accuracy=5, geoprivacy="private")
    inat.add_observation(5, NIGER, photos=[{"id": 50}], place_ids=(ELSEWHERE,))


@pytest.fixture
def reserve(inat: InatServer) -> InatServer:
    build_reserve(inat)
    return inat


def read_records(data: Path) -> list[dict[str, str]]:
    with (data / "records.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def observation_requests(inat: InatServer) -> list[RecordedRequest]:
    return [r for r in inat.api_requests() if r.path == "/v1/observations"]


def photo_url(inat: InatServer, photo_id: int) -> str:
    return inat.photo_url(photo_id, "original")


def test_the_founding_export_field_by_field(reserve: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run(reserve, data, "records", "fetch", "--place-id", str(PLACE))
    assert result.exit_code == 0, result.output
    assert (
        f"Wrote {data / 'records.csv'} (4 records, 4 new; 1 API request, 1 observation page)."
        in result.output
    )
    lines = (data / "records.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == HEADER
    url = "https://www.inaturalist.org/observations/"
    assert read_records(data) == [
        {
            "occurrenceID": f"{url}1",
            "catalogNumber": "1",
            "basisOfRecord": "HumanObservation",
            "scientificName": "Gobius niger",
            "taxonID": str(NIGER),
            "taxonRank": "species",
            "vernacularName": "Black Goby",
            "eventDate": "2021-06-01T10:15:00+01:00",
            "decimalLatitude": "38.47123456789012",
            "decimalLongitude": "-8.98",
            "coordinateUncertaintyInMeters": "",
            "informationWithheld": "",
            "recordedBy": "Ana Diver",
            "identificationVerificationStatus": "research",
            "license": "http://creativecommons.org/licenses/by-nc/4.0/legalcode",
            "rightsHolder": "Ana Diver",
            "associatedMedia": f"{photo_url(reserve, 10)} | {photo_url(reserve, 11)}",
        },
        {
            "occurrenceID": f"{url}2",
            "catalogNumber": "2",
            "basisOfRecord": "HumanObservation",
            "scientificName": "Gobius niger jozo",
            "taxonID": str(JOZO),
            "taxonRank": "subspecies",
            "vernacularName": "",
            "eventDate": "2021-07-02",
            "decimalLatitude": "50.09",
            "decimalLongitude": "-104.71",
            "coordinateUncertaintyInMeters": "28313",
            "informationWithheld": (
                "Coordinate uncertainty increased to 28313m at the request of the observer"
            ),
            "recordedBy": "samroom",
            "identificationVerificationStatus": "casual",
            "license": "",
            "rightsHolder": "samroom",
            "associatedMedia": "",
        },
        {
            "occurrenceID": f"{url}3",
            "catalogNumber": "3",
            "basisOfRecord": "HumanObservation",
            "scientificName": "Posidonia oceanica",
            "taxonID": str(OCEANICA),
            "taxonRank": "species",
            "vernacularName": "Neptune Grass",
            "eventDate": "2020-08-27T12:00:00+00:00",
            "decimalLatitude": "38.5",
            "decimalLongitude": "-9.0",
            "coordinateUncertaintyInMeters": "27800",
            "informationWithheld": "Coordinate uncertainty increased to 27800m to protect threatened taxon",
            "recordedBy": "samroom",
            "identificationVerificationStatus": "research",
            "license": "http://creativecommons.org/publicdomain/zero/1.0/legalcode",
            "rightsHolder": "samroom",
            "associatedMedia": photo_url(reserve, 30),
        },
        {
            "occurrenceID": f"{url}4",
            "catalogNumber": "4",
            "basisOfRecord": "HumanObservation",
            "scientificName": "Gobius niger",
            "taxonID": str(NIGER),
            "taxonRank": "species",
            "vernacularName": "Black Goby",
            "eventDate": "2020-08-27T12:00:00+00:00",
            "decimalLatitude": "",
            "decimalLongitude": "",
            "coordinateUncertaintyInMeters": "",
            "informationWithheld": "Coordinates hidden at the request of the observer",
            "recordedBy": "samroom",
            "identificationVerificationStatus": "needs_id",
            "license": "http://creativecommons.org/publicdomain/zero/1.0/legalcode",
            "rightsHolder": "samroom",
            "associatedMedia": "",  # its only photo is flagged: the API gives a placeholder
        },
    ]


def test_the_server_sent_what_the_rows_say(reserve: InatServer, tmp_path: Path) -> None:
    """The rows against the observations' JSON as the server sends them (not as built)."""
    data = tmp_path / "data"
    assert run(reserve, data, "records", "fetch", "--place-id", str(PLACE)).exit_code == 0
    for row in read_records(data):
        sent = reserve.observation(int(row["catalogNumber"]))
        assert row["occurrenceID"] == sent["uri"]
        assert row["taxonID"] == str(sent["taxon"]["id"])
        assert row["scientificName"] == sent["taxon"]["name"]
        assert row["identificationVerificationStatus"] == sent["quality_grade"]
        assert row["eventDate"] == (sent["time_observed_at"] or sent["observed_on"])
        assert row["coordinateUncertaintyInMeters"] == str(sent["public_positional_accuracy"] or "")
        assert row["recordedBy"] == (sent["user"]["name"] or sent["user"]["login"])
        if sent["geojson"]:
            longitude, latitude = sent["geojson"]["coordinates"]
            assert (float(row["decimalLatitude"]), float(row["decimalLongitude"])) == (latitude, longitude)


def test_paged_by_id_above_with_every_photo_condition_left_out(reserve: InatServer, tmp_path: Path) -> None:
    assert run(reserve, tmp_path / "data", "records", "fetch", "--place-id", str(PLACE)).exit_code == 0
    (request,) = observation_requests(reserve)
    assert request.query == {
        "place_id": str(PLACE),
        "order_by": "id",
        "order": "asc",
        "per_page": "200",
        "id_above": "0",
    }


def test_past_the_10000_window_no_page_numbers_and_no_duplicates(inat: InatServer, tmp_path: Path) -> None:
    inat.add_taxon(ANIMALIA, "Animalia", rank="kingdom")
    inat.add_taxon(NIGER, "Gobius niger", parent_id=ANIMALIA)
    inat.add_observations(NIGER, 10_250, first_id=1, place_ids=(PLACE,), photos_per_observation=0)
    data = tmp_path / "data"
    result = run(inat, data, "--api-rate", "1000", "records", "fetch", "--place-id", str(PLACE))
    assert result.exit_code == 0, result.output
    ids = [int(row["catalogNumber"]) for row in read_records(data)]
    assert ids == list(range(1, 10_251))
    requests = observation_requests(inat)
    assert len(requests) == 52  # ceil(10,250 / 200): the last page is short, nothing more is asked
    assert all("page" not in r.query and r.status == 200 for r in requests)
    assert [int(r.query["id_above"]) for r in requests] == [200 * n for n in range(52)]


def test_a_rerun_asks_only_for_newer_observations(reserve: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(reserve, data, "records", "fetch", "--place-id", str(PLACE)).exit_code == 0
    first = read_records(data)
    reserve.add_observation(7, NIGER, photos=[], place_ids=(PLACE,))
    reserve.add_observation(6, OCEANICA, photos=[{"id": 60, "license_code": None}], place_ids=(PLACE,))
    reserve.clear_requests()
    result = run(reserve, data, "records", "fetch", "--place-id", str(PLACE))
    assert result.exit_code == 0, result.output
    assert "(6 records, 2 new; 1 API request, 1 observation page)" in result.output
    (request,) = observation_requests(reserve)
    assert request.query["id_above"] == "4"  # the highest id seen (observation 5 is elsewhere)
    rows = read_records(data)
    assert rows[:4] == first
    assert [row["catalogNumber"] for row in rows] == ["1", "2", "3", "4", "6", "7"]
    reserve.clear_requests()
    assert run(reserve, data, "records", "fetch", "--place-id", str(PLACE)).exit_code == 0
    assert [r.query["id_above"] for r in observation_requests(reserve)] == ["7"]
    assert read_records(data) == rows
    assert sorted(p.name for p in data.iterdir()) == [
        ".records.csv.cursors.json",
        "records.csv",
        "records.lock",
    ]


def test_the_taxa_of_taxa_csv_in_one_query_with_their_descendants(
    reserve: InatServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    write_taxa(data, [(NIGER, "Gobius niger"), (OCEANICA, "Posidonia oceanica")])
    result = run(reserve, data, "records", "fetch")
    assert result.exit_code == 0, result.output
    assert [row["catalogNumber"] for row in read_records(data)] == ["1", "2", "3", "4", "5"]
    (request,) = observation_requests(reserve)
    assert request.query["taxon_id"] == f"{NIGER},{OCEANICA}"
    assert "photos" not in request.query and "photo_license" not in request.query


def test_a_taxon_added_to_taxa_csv_is_walked_from_the_start_the_others_from_their_cursor(
    reserve: InatServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    write_taxa(data, [(OCEANICA, "Posidonia oceanica")])
    assert run(reserve, data, "records", "fetch").exit_code == 0
    assert [row["catalogNumber"] for row in read_records(data)] == ["3"]
    write_taxa(data, [(OCEANICA, "Posidonia oceanica"), (NIGER, "Gobius niger")])
    reserve.clear_requests()
    result = run(reserve, data, "records", "fetch")
    assert result.exit_code == 0, result.output
    asked = [(r.query["taxon_id"], r.query["id_above"]) for r in observation_requests(reserve)]
    assert asked == [(str(NIGER), "0"), (str(OCEANICA), "3")]
    assert [row["catalogNumber"] for row in read_records(data)] == ["1", "2", "3", "4", "5"]
    reserve.clear_requests()
    assert run(reserve, data, "records", "fetch").exit_code == 0  # both walks ended: together again
    (request,) = observation_requests(reserve)
    assert (request.query["taxon_id"], request.query["id_above"]) == (f"{NIGER},{OCEANICA}", "5")


def test_an_observation_under_two_listed_taxa_is_one_row(reserve: InatServer, tmp_path: Path) -> None:
    """A subspecies listed after its species is walked from the start: its observations are
    already rows (the species' walk includes descendants), and stay one row each."""
    data = tmp_path / "data"
    write_taxa(data, [(NIGER, "Gobius niger")])
    assert run(reserve, data, "records", "fetch").exit_code == 0
    write_taxa(data, [(NIGER, "Gobius niger"), (JOZO, "Gobius niger jozo")])
    reserve.clear_requests()
    result = run(reserve, data, "records", "fetch")
    assert result.exit_code == 0, result.output
    assert "(4 records, 0 new;" in result.output
    assert [(r.query["taxon_id"], r.query["id_above"]) for r in observation_requests(reserve)] == [
        (str(JOZO), "0"),
        (str(NIGER), "5"),
    ]
    assert [row["catalogNumber"] for row in read_records(data)] == ["1", "2", "4", "5"]


def test_a_taxon_removed_or_another_filter_makes_the_file_again(reserve: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_taxa(data, [(OCEANICA, "Posidonia oceanica"), (NIGER, "Gobius niger")])
    assert run(reserve, data, "records", "fetch").exit_code == 0
    write_taxa(data, [(OCEANICA, "Posidonia oceanica")])
    result = run(reserve, data, "records", "fetch")
    assert (
        "Made again from the start: records.csv holds records of taxa no longer asked for." in result.output
    )
    assert [row["catalogNumber"] for row in read_records(data)] == ["3"]
    reserve.clear_requests()
    result = run(reserve, data, "records", "fetch", "--quality", "research,needs_id")
    assert "Made again from the start: the filter differs" in result.output
    assert [row["catalogNumber"] for row in read_records(data)] == ["3"]
    assert observation_requests(reserve)[0].query["id_above"] == "0"
    reserve.clear_requests()  # the same grades in another order are the same filter
    result = run(reserve, data, "records", "fetch", "--quality", "needs_id,research")
    assert "Made again" not in result.output
    assert observation_requests(reserve)[0].query["id_above"] == "3"


def test_within_a_higher_taxon(reserve: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    filters = ["--place-id", str(PLACE), "--within", "Actinopterygii", "--quality", "research,casual"]
    result = run(reserve, data, "records", "fetch", *filters)
    assert result.exit_code == 0, result.output
    assert [row["catalogNumber"] for row in read_records(data)] == ["1", "2"]
    request = observation_requests(reserve)[-1]
    assert request.query["taxon_id"] == str(FISHES)
    assert request.query["quality_grade"] == "research,casual"
    assert request.query["place_id"] == str(PLACE)


def test_parquet_readable_by_pyarrow_with_the_same_values(reserve: InatServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(reserve, data, "records", "fetch", "--place-id", str(PLACE)).exit_code == 0
    result = run(reserve, data, "records", "fetch", "--place-id", str(PLACE), "--format", "parquet")
    assert result.exit_code == 0, result.output
    table = pq.read_table(data / "records.parquet")
    assert table.column_names == HEADER.split(",")
    types = {field.name: str(field.type) for field in table.schema}
    assert types["catalogNumber"] == types["taxonID"] == types["coordinateUncertaintyInMeters"] == "int64"
    assert types["decimalLatitude"] == types["decimalLongitude"] == "double"
    assert types["eventDate"] == types["scientificName"] in ("string", "large_string")
    parquet_rows = table.to_pylist()
    for csv_row, parquet_row in zip(read_records(data), parquet_rows, strict=True):
        assert {k: "" if v is None else str(v) for k, v in parquet_row.items()} == csv_row
    reserve.add_observation(9, NIGER, photos=[], place_ids=(PLACE,))
    reserve.clear_requests()
    assert (
        run(reserve, data, "records", "fetch", "--place-id", str(PLACE), "--format", "parquet").exit_code == 0
    )
    assert [r.query["id_above"] for r in observation_requests(reserve)] == ["4"]
    assert pq.read_table(data / "records.parquet").column("catalogNumber").to_pylist() == [1, 2, 3, 4, 9]


def test_names_that_look_like_missing_values_stay_names(inat: InatServer, tmp_path: Path) -> None:
    inat.add_taxon(ANIMALIA, "Animalia", rank="kingdom")
    inat.add_taxon(NIGER, "Gobius niger", parent_id=ANIMALIA, common_name="NA")
    inat.add_observation(1, NIGER, photos=[], place_ids=(PLACE,), user_login="nan")
    data = tmp_path / "data"
    assert run(inat, data, "records", "fetch", "--place-id", str(PLACE)).exit_code == 0
    inat.add_observation(2, NIGER, photos=[], place_ids=(PLACE,), user_login="null")
    assert run(inat, data, "records", "fetch", "--place-id", str(PLACE)).exit_code == 0  # read back, written
    rows = read_records(data)
    assert [(r["vernacularName"], r["recordedBy"]) for r in rows] == [("NA", "nan"), ("NA", "null")]


def test_an_api_failure_keeps_what_was_fetched_and_the_rerun_goes_on(
    inat: InatServer, tmp_path: Path
) -> None:
    inat.add_taxon(ANIMALIA, "Animalia", rank="kingdom")
    inat.add_taxon(NIGER, "Gobius niger", parent_id=ANIMALIA)
    inat.add_observations(NIGER, 450, first_id=1, place_ids=(PLACE,), photos_per_observation=0)
    fault = inat.add_fault(Fault("status", target="observations", status=404, path_contains="id_above=200"))
    data = tmp_path / "data"
    result = run(inat, data, "--api-rate", "1000", "records", "fetch", "--place-id", str(PLACE))
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("Error: ")
    assert "HTTP 404" in result.output.splitlines()[-1]
    assert [row["catalogNumber"] for row in read_records(data)] == [str(n) for n in range(1, 201)]
    inat.remove_fault(fault)
    inat.clear_requests()
    result = run(inat, data, "--api-rate", "1000", "records", "fetch", "--place-id", str(PLACE))
    assert result.exit_code == 0, result.output
    assert [r.query["id_above"] for r in observation_requests(inat)] == ["200", "400"]
    assert [int(row["catalogNumber"]) for row in read_records(data)] == list(range(1, 451))


def test_a_failure_before_any_page_leaves_no_file(reserve: InatServer, tmp_path: Path) -> None:
    reserve.add_fault(Fault("status", target="observations", status=404))
    data = tmp_path / "data"
    result = run(reserve, data, "records", "fetch", "--place-id", str(PLACE))
    assert result.exit_code == 1
    assert not (data / "records.csv").exists()
    assert not [p for p in data.iterdir() if p.name.endswith(".part")]


def test_a_filter_that_matches_nothing_keeps_the_earlier_export(reserve: InatServer, tmp_path: Path) -> None:
    """As `taxa observed` on an empty answer: one line, exit 1, and the records.csv of an
    earlier filter kept byte for byte with its cursors, not replaced by an empty file."""
    data = tmp_path / "data"
    assert run(reserve, data, "records", "fetch", "--place-id", str(PLACE)).exit_code == 0
    kept = [data / "records.csv", data / ".records.csv.cursors.json"]
    before = [path.read_bytes() for path in kept]
    reserve.clear_requests()
    result = run(reserve, data, "records", "fetch", "--place-id", "424242", "--quality", "research")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: no observation in place 424242 of quality research: records.csv was left as it was; "
        "check the filters"
    ]
    assert [path.read_bytes() for path in kept] == before
    assert [r.query["place_id"] for r in observation_requests(reserve)] == ["424242"]
    assert not [p for p in data.iterdir() if p.name.endswith(".part")]
    write_taxa(tmp_path / "new", [(NIGER, "Gobius niger")])
    result = run(reserve, tmp_path / "new", "records", "fetch", "--observed-from", "2030-01-01")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: no observation of Gobius niger observed from 2030-01-01: no records.csv was written; "
        "check the filters"
    ]
    assert not (tmp_path / "new" / "records.csv").exists()


def test_cursors_beside_a_file_they_do_not_describe_are_not_trusted(
    reserve: InatServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert run(reserve, data, "records", "fetch", "--place-id", str(PLACE)).exit_code == 0
    (data / ".records.csv.cursors.json").unlink()
    reserve.clear_requests()
    result = run(reserve, data, "records", "fetch", "--place-id", str(PLACE))
    assert "Made again from the start: records.csv has no cursors beside it" in result.output
    assert observation_requests(reserve)[0].query["id_above"] == "0"
    assert len(read_records(data)) == 4
    saved = json.loads((data / ".records.csv.cursors.json").read_text(encoding="utf-8"))
    assert saved["cursors"] == {"*": 4}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 1, "no taxa.csv in"),
        (
            ("--within", "Nothingia"),
            1,
            "--within 'Nothingia': iNaturalist has no taxon of that scientific name",
        ),
        (("--within", " "), 2, "give the scientific name of a higher taxon"),
        (("--observed-from", "2021-02-01", "--observed-to", "2021-01-01"), 2, "--observed-from is after"),
        (("--format", "xlsx"), 2, "'xlsx' is not one of 'csv', 'parquet'"),
        (("--quality", "good"), 2, "choose from research, needs_id, casual"),
    ],
)
def test_mistakes_are_one_line_and_an_exit_code(
    reserve: InatServer, tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    result = run(reserve, tmp_path / "data", "records", "fetch", *args)
    assert result.exit_code == code
    assert message in result.output
    if code == 1:
        assert len(result.output.strip().splitlines()) == 1
        assert "or give --place-id or --within" in result.output or "--within" in args


def test_filters_go_to_the_api(reserve: InatServer, tmp_path: Path) -> None:
    args = ["--bbox", "38,-10,39,-8", "--observed-from", "2021-01-01", "--observed-to", "2021-12-31"]
    result = run(reserve, tmp_path / "data", "records", "fetch", "--place-id", str(PLACE), *args)
    assert result.exit_code == 0, result.output
    query: dict[str, Any] = observation_requests(reserve)[0].query
    assert {k: query[k] for k in ("swlat", "swlng", "nelat", "nelng", "d1", "d2")} == {
        "swlat": "38.0",
        "swlng": "-10.0",
        "nelat": "39.0",
        "nelng": "-8.0",
        "d1": "2021-01-01",
        "d2": "2021-12-31",
    }
    assert [row["catalogNumber"] for row in read_records(tmp_path / "data")] == ["1"]


def test_only_this_command_loads_pandas_and_pyarrow() -> None:
    """`photos fetch` starts fast: the CLI module does not import the table libraries."""
    code = "import sys, inatdl.cli; print(sorted({'pandas', 'pyarrow'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_ctrl_c_keeps_the_pages_fetched_and_the_rerun_goes_on(inat: InatServer, tmp_path: Path) -> None:
    inat.add_taxon(ANIMALIA, "Animalia", rank="kingdom")
    inat.add_taxon(NIGER, "Gobius niger", parent_id=ANIMALIA)
    inat.add_observations(NIGER, 450, first_id=1, place_ids=(PLACE,), photos_per_observation=0)
    client = ApiClient(inat.api_url, build_session(), FakeClock(), rate=1000)
    query = RecordsQuery(Filters((), place_id=PLACE), None)

    def ctrl_c_at_the_third_page(done: int, left: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    data = tmp_path / "data"
    data.mkdir()
    report = fetch_records(client, data, query, on_page=ctrl_c_at_the_third_page)
    assert isinstance(report.stopped, KeyboardInterrupt)
    assert (report.records, report.pages) == (400, 3)
    assert [int(row["catalogNumber"]) for row in read_records(data)] == list(range(1, 401))
    inat.clear_requests()
    report = fetch_records(client, data, query)
    assert report.stopped is None and (report.records, report.new) == (450, 50)
    assert [r.query["id_above"] for r in observation_requests(inat)] == ["400"]
