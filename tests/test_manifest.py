"""What users vary, end to end: licences mixed within one observation, places given as
geojson or only as `location`, dates, quality grades, observers; and every photos.csv
column checked against the server's own data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from inat_server import OBSCURED_ACCURACY, InatServer
from world import files, manifest, run, write_taxa

# The contract's photos.csv columns, in order.
COLUMNS = [
    "photo_id", "observation_id", "taxon_id", "taxon_name", "observed_taxon_id",
    "observed_taxon_name", "size", "path", "url", "license_code", "attribution", "observer",
    "quality_grade", "latitude", "longitude", "observed_on", "observation_url", "bytes",
    "observation_uuid", "positional_accuracy", "coordinates_obscured",
]  # fmt: skip

OAK, OAK_VARIETY, IRIS = 10, 11, 20


def mixed_licence_world(inat: InatServer) -> None:
    """Observations whose photos carry different licences, as real ones often do."""
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(OAK, "Quercus robur", parent_id=1)
    photos = [(11, "cc-by"), (12, "cc-by-nc"), (13, None), (14, "cc-by-sa")]
    inat.add_observation(1, OAK, photos=[{"id": p, "license_code": code} for p, code in photos])
    inat.add_observation(
        2, OAK, photos=[{"id": 21, "license_code": "cc-by-nc"}, {"id": 22, "license_code": "cc0"}]
    )
    inat.add_observation(3, OAK, photos=[{"id": 31, "license_code": "cc-by-nd"}])
    inat.add_observation(
        4, OAK, photos=[{"id": 41, "license_code": None}, {"id": 42, "license_code": "cc-by"}]
    )


@pytest.mark.parametrize(
    ("licences", "wanted"),
    [
        ("cc-by", [11, 42]),
        ("cc-by-nc,cc0", [12, 21, 22]),
        ("cc-by-sa,cc-by-nd", [14, 31]),
    ],
)
def test_only_photos_of_the_asked_licences_beside_photos_of_others(
    inat: InatServer, tmp_path: Path, licences: str, wanted: list[int]
) -> None:
    """The API's photo_license filter lets an observation through when any one of its photos
    matches: each photo's own licence must be judged again."""
    mixed_licence_world(inat)
    data = tmp_path / "data"
    write_taxa(data, [(OAK, "Quercus robur")])
    result = run(inat, data, "photos", "fetch", "--size", "small", "--license", licences)
    assert result.exit_code == 0, result.output
    assert {r.query["photo_license"] for r in inat.requests_to("/v1/observations")} == {licences}
    assert files(data) == {
        f"photos/Quercus_robur/{p}_small.jpg": inat.photo_bytes(p, "small") for p in wanted
    }
    assert sorted(int(r["photo_id"]) for r in manifest(data)) == wanted
    assert {r["license_code"] for r in manifest(data)} <= set(licences.split(","))
    assert sorted(int(r.path.split("/")[2]) for r in inat.photo_requests()) == wanted


# Every column ---------------------------------------------------------------------------

# observation id -> (taxon, where the JSON gives the place, lat, lng, date, grade, observer)
OBSERVATIONS: dict[int, tuple[int, str, float, float, str, str, str]] = {
    101: (OAK, "both", 51.4779, -0.0015, "2019-06-01", "research", "kew_gardener"),
    102: (OAK, "geojson", -33.8688, 151.2093, "2021-12-31", "needs_id", "sydney.naturalist"),
    103: (OAK, "location", 64.1466, -21.9426, "2018-03-09", "casual", "reykjavik"),
    104: (OAK_VARIETY, "none", 0.0, 0.0, "2020-02-29", "research", "no_place"),
    105: (OAK, "location", -0.5, 179.25, "", "needs_id", "undated"),
    201: (IRIS, "geojson", 45.0, 7.6833, "2022-07-14", "research", "torino"),
    202: (IRIS, "both", 35.6895, 139.6917, "2017-05-05", "casual", "tokyo_iris"),
}
PHOTOS: dict[int, list[dict[str, Any]]] = {
    101: [{"id": 1011, "license_code": "cc-by"}, {"id": 1012, "license_code": "cc-by-nc-sa"}],
    102: [{"id": 1021, "license_code": "cc0"}],
    103: [{"id": 1031, "license_code": "cc-by-nd"}, {"id": 1032, "license_code": None}],
    104: [{"id": 1041, "license_code": "cc-by-sa"}],
    105: [{"id": 1051, "license_code": "cc-by-nc-nd"}],
    201: [{"id": 2011, "license_code": "cc0", "host": "open", "ext": "jpeg"}],
    202: [{"id": 2021, "license_code": "cc-by", "host": "open", "ext": "png"}],
}


# observation id -> (its coordinate privacy, photos.csv's positional_accuracy and
# coordinates_obscured); the others say nothing of their accuracy, and are not obscured.
PRIVACY: dict[int, tuple[dict[str, Any], str, str]] = {
    101: ({"accuracy": 23}, "23", "false"),
    # a threatened taxon's, said by taxon_geoprivacy alone
    102: (
        {"accuracy": 12, "taxon_geoprivacy": "obscured", "omit": ("obscured",)},
        str(OBSCURED_ACCURACY),
        "true",
    ),
    103: ({"accuracy": 40_000, "geoprivacy": "obscured"}, "40000", "true"),
    104: ({"geoprivacy": "private", "omit": ("obscured",)}, "", "true"),  # no public coordinates at all
    # an answer that says nothing of them
    105: ({"accuracy": 8, "omit": ("obscured", "public_positional_accuracy", "uuid")}, "", ""),
    # said by the obscured flag alone
    201: (
        {"geoprivacy": "obscured", "omit": ("geoprivacy", "taxon_geoprivacy")},
        str(OBSCURED_ACCURACY),
        "true",
    ),
    202: ({"accuracy": 374, "geoprivacy": "open", "taxon_geoprivacy": "open"}, "374", "false"),
}


def varied_world(inat: InatServer) -> None:
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(OAK, "Quercus robur", parent_id=1)
    inat.add_taxon(OAK_VARIETY, "Quercus robur pedunculata", rank="variety", parent_id=OAK)
    inat.add_taxon(IRIS, "Iris × germanica", parent_id=1)
    for obs_id, (taxon, place, lat, lng, date, grade, login) in OBSERVATIONS.items():
        inat.add_observation(
            obs_id,
            taxon,
            photos=PHOTOS[obs_id],
            coordinates=place,
            latitude=lat,
            longitude=lng,
            observed_on=date,
            quality_grade=grade,
            user_login=login,
        )
        if obs_id in PRIVACY:
            inat.set_coordinates_privacy(obs_id, **PRIVACY[obs_id][0])


def test_every_manifest_column_holds_the_servers_data(inat: InatServer, tmp_path: Path) -> None:
    varied_world(inat)
    data = tmp_path / "data"
    write_taxa(data, [(OAK, "Quercus robur"), (IRIS, "Iris × germanica")])
    result = run(inat, data, "photos", "fetch", "--size", "small")
    assert result.exit_code == 0, result.output
    rows = manifest(data)
    assert rows and list(rows[0]) == COLUMNS
    folders = {OAK: "Quercus_robur", IRIS: "Iris_×_germanica"}
    names = {OAK: "Quercus robur", IRIS: "Iris × germanica"}
    expected: dict[str, dict[str, object]] = {}
    for obs_id, (taxon, place, lat, lng, date, grade, login) in OBSERVATIONS.items():
        observation = inat.observation(obs_id)  # the JSON the API gave
        listed = OAK if taxon == OAK_VARIETY else taxon
        for photo in observation["photos"]:
            if photo["license_code"] is None:
                continue
            ext = photo["url"].split("?")[0].rsplit(".", 1)[1]
            expected[str(photo["id"])] = {
                "photo_id": str(photo["id"]),
                "observation_id": str(obs_id),
                "taxon_id": str(listed),
                "taxon_name": names[listed],
                "observed_taxon_id": str(observation["taxon"]["id"]),
                "observed_taxon_name": observation["taxon"]["name"],
                "size": "small",
                "path": f"photos/{folders[listed]}/{photo['id']}_small.{ext}",
                "url": photo["url"].replace("/square.", "/small."),
                "license_code": photo["license_code"],
                "attribution": photo["attribution"],
                "observer": observation["user"]["login"],
                "quality_grade": observation["quality_grade"],
                "latitude": "" if place == "none" else lat,
                "longitude": "" if place == "none" else lng,
                "observed_on": observation["observed_on"] or "",
                "observation_url": observation["uri"],
                "bytes": str(len(inat.photo_bytes(photo["id"], "small"))),
                "observation_uuid": "" if obs_id == 105 else observation["uuid"],
                "positional_accuracy": PRIVACY.get(obs_id, ({}, "", ""))[1],
                "coordinates_obscured": PRIVACY.get(obs_id, ({}, "", "false"))[2],
            }
            # what the test data says, so that the server's JSON is not trusted blindly
            assert (observation["quality_grade"], observation["user"]["login"]) == (grade, login)
            assert (observation["observed_on"] or "") == date
    degrees = ("latitude", "longitude")  # compared as numbers, however the CSV spells them
    got = {
        row["photo_id"]: {k: float(v) if k in degrees and v else v for k, v in row.items()} for row in rows
    }
    assert got == expected
    for row in rows:
        assert (data / row["path"]).read_bytes() == inat.photo_bytes(int(row["photo_id"]), "small")
    assert len(files(data)) == len(rows) == 8
