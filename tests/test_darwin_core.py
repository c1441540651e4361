"""darwin_core.darwin_core_record: each Darwin Core term from the API's observation JSON."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from inatdl.darwin_core import COLUMNS, darwin_core_record, information_withheld, license_url

# A real observation (GET /v1/observations/16227955, recorded by pyinaturalist, MIT), cut to
# the fields a record reads.
REAL: dict[str, Any] = {
    "id": 16227955,
    "uri": "https://www.inaturalist.org/observations/16227955",
    "quality_grade": "research",
    "observed_on": "2018-09-05",
    "time_observed_at": "2018-09-05T14:06:00+02:00",
    "species_guess": "Lixus bardanae",
    "license_code": "cc0",
    "obscured": False,
    "geoprivacy": None,
    "taxon_geoprivacy": None,
    "positional_accuracy": 23,
    "public_positional_accuracy": 23,
    "community_taxon_id": 493595,
    "location": "50.646894,4.360086",
    "geojson": {"coordinates": [4.360086, 50.646894], "type": "Point"},
    "taxon": {"id": 493595, "name": "Lixus bardanae", "rank": "species", "ancestor_ids": [1, 493595]},
    "user": {"id": 886482, "login": "niconoe", "name": "Nicolas Noé"},
    "photos": [
        {
            "id": 24355315,
            "license_code": "cc-by",
            "url": "https://inaturalist-open-data.s3.amazonaws.com/photos/24355315/square.jpeg",
        },
        {
            "id": 24355313,
            "license_code": "cc-by",
            "url": "https://inaturalist-open-data.s3.amazonaws.com/photos/24355313/square.jpeg",
        },
    ],
}


def changed(**fields: Any) -> dict[str, Any]:
    observation = copy.deepcopy(REAL)
    observation.update(fields)
    return observation


def test_a_real_observation_term_by_term() -> None:
    assert darwin_core_record(REAL) == {
        "occurrenceID": "https://www.inaturalist.org/observations/16227955",
        "catalogNumber": 16227955,
        "basisOfRecord": "HumanObservation",
        "scientificName": "Lixus bardanae",
        "taxonID": 493595,
        "taxonRank": "species",
        "vernacularName": None,  # the API gives no preferred_common_name for this taxon
        "eventDate": "2018-09-05T14:06:00+02:00",
        "decimalLatitude": 50.646894,
        "decimalLongitude": 4.360086,
        "coordinateUncertaintyInMeters": 23,
        "informationWithheld": None,
        "recordedBy": "Nicolas Noé",
        "identificationVerificationStatus": "research",
        "license": "http://creativecommons.org/publicdomain/zero/1.0/legalcode",
        "rightsHolder": "Nicolas Noé",
        "associatedMedia": "https://inaturalist-open-data.s3.amazonaws.com/photos/24355315/original.jpeg"
        " | https://inaturalist-open-data.s3.amazonaws.com/photos/24355313/original.jpeg",
    }
    assert tuple(darwin_core_record(REAL)) == COLUMNS


def test_the_date_alone_when_no_time_was_recorded() -> None:
    assert darwin_core_record(changed(time_observed_at=None))["eventDate"] == "2018-09-05"
    assert darwin_core_record(changed(time_observed_at=None, observed_on=None))["eventDate"] is None


def test_the_login_when_the_observer_gave_no_name() -> None:
    record = darwin_core_record(changed(user={"login": "samroom", "name": None}))
    assert (record["recordedBy"], record["rightsHolder"]) == ("samroom", "samroom")
    record = darwin_core_record(changed(user={"login": "samroom", "name": "  "}))
    assert record["recordedBy"] == "samroom"


def test_the_taxons_common_name_not_the_observers_guess() -> None:
    taxon = {**REAL["taxon"], "preferred_common_name": "Burdock weevil"}
    record = darwin_core_record(changed(taxon=taxon, species_guess="a weevil"))
    assert record["vernacularName"] == "Burdock weevil"


def test_the_observations_taxon_not_the_community_taxon() -> None:
    record = darwin_core_record(changed(community_taxon_id=1))
    assert (record["taxonID"], record["scientificName"]) == (493595, "Lixus bardanae")


@pytest.mark.parametrize(
    ("code", "url"),
    [
        ("cc0", "http://creativecommons.org/publicdomain/zero/1.0/legalcode"),
        ("cc-by", "http://creativecommons.org/licenses/by/4.0/legalcode"),
        ("cc-by-nc", "http://creativecommons.org/licenses/by-nc/4.0/legalcode"),
        ("CC-BY-NC", "http://creativecommons.org/licenses/by-nc/4.0/legalcode"),
        ("cc-by-sa", "http://creativecommons.org/licenses/by-sa/4.0/legalcode"),
        ("cc-by-nd", "http://creativecommons.org/licenses/by-nd/4.0/legalcode"),
        ("cc-by-nc-sa", "http://creativecommons.org/licenses/by-nc-sa/4.0/legalcode"),
        ("cc-by-nc-nd", "http://creativecommons.org/licenses/by-nc-nd/4.0/legalcode"),
        ("pd", "http://creativecommons.org/publicdomain/mark/1.0/"),
        (None, None),  # all rights reserved
        ("", None),
        ("some-new-licence", "some-new-licence"),
    ],
)
def test_the_licence_as_gbif_writes_it(code: str | None, url: str | None) -> None:
    assert license_url(code) == url
    assert darwin_core_record(changed(license_code=code))["license"] == url


@pytest.mark.parametrize(
    ("fields", "withheld"),
    [
        ({}, None),
        ({"geoprivacy": "open"}, None),
        (
            {"geoprivacy": "obscured", "obscured": True, "public_positional_accuracy": 28_313},
            "Coordinate uncertainty increased to 28313m at the request of the observer",
        ),
        (
            {"obscured": True, "taxon_geoprivacy": "obscured", "public_positional_accuracy": 27_000},
            "Coordinate uncertainty increased to 27000m to protect threatened taxon",
        ),
        ({"obscured": True}, "Coordinate uncertainty increased to 23m to protect threatened taxon"),
        (
            {"obscured": True, "public_positional_accuracy": None},
            "Coordinate uncertainty increased to protect threatened taxon",
        ),
        (
            {"geoprivacy": "private", "location": None, "geojson": None},
            "Coordinates hidden at the request of the observer",
        ),
    ],
)
def test_information_withheld_says_why_the_coordinates_are_not_the_observers(
    fields: dict[str, Any], withheld: str | None
) -> None:
    assert information_withheld(changed(**fields)) == withheld


def test_obscured_coordinates_keep_their_public_accuracy() -> None:
    observation = changed(
        obscured=True, geoprivacy="obscured", positional_accuracy=5, public_positional_accuracy=28_313
    )
    record = darwin_core_record(observation)
    assert record["coordinateUncertaintyInMeters"] == 28_313
    assert (record["decimalLatitude"], record["decimalLongitude"]) == (50.646894, 4.360086)


def test_private_coordinates_are_empty() -> None:
    record = darwin_core_record(changed(geoprivacy="private", location=None, geojson=None))
    assert (record["decimalLatitude"], record["decimalLongitude"]) == (None, None)


def test_unknown_accuracy_is_empty_not_zero() -> None:
    assert (
        darwin_core_record(changed(public_positional_accuracy=None))["coordinateUncertaintyInMeters"] is None
    )
    assert (
        darwin_core_record(changed(public_positional_accuracy=True))["coordinateUncertaintyInMeters"] is None
    )
    assert darwin_core_record(changed(public_positional_accuracy=12.6))["coordinateUncertaintyInMeters"] == 13


def test_associated_media_leaves_out_placeholders_and_keeps_odd_urls() -> None:
    photos = [
        {
            "id": 1,
            "url": "https://static.inaturalist.org/photos/1/square.jpg?1598551272",
            "license_code": None,
        },
        {"id": 2, "url": "https://www.inaturalist.org/assets/copyright-infringement-square.png"},
        {"id": 3, "url": "https://example.org/3.jpg"},
        {"id": 1, "url": "https://static.inaturalist.org/photos/1/square.jpg?1598551272"},  # listed twice
    ]
    record = darwin_core_record(changed(photos=photos))
    assert record["associatedMedia"] == (
        "https://static.inaturalist.org/photos/1/original.jpg?1598551272 | https://example.org/3.jpg"
    )
    assert darwin_core_record(changed(photos=[]))["associatedMedia"] is None


def test_an_observation_without_taxon_user_or_uri() -> None:
    record = darwin_core_record({"id": 7})
    assert record["occurrenceID"] == "https://www.inaturalist.org/observations/7"
    assert record["catalogNumber"] == 7
    assert record["basisOfRecord"] == "HumanObservation"
    empty = set(COLUMNS) - {"occurrenceID", "catalogNumber", "basisOfRecord"}
    assert {name: record[name] for name in empty} == dict.fromkeys(empty)
