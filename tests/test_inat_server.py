"""Tests of the fake iNaturalist server itself: the behaviours inatdl's client relies on."""

from __future__ import annotations

import io
import re
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from inat_server import (
    NO_FILE_PATH,
    OBSCURED_ACCURACY,
    PLACEHOLDER_PATH,
    WINDOW_ERROR,
    Fault,
    InatServer,
    attribution,
    http_date,
    photo_pixels,
)
from PIL import Image

JPEG = b"\xff\xd8\xff\xe0"
PNG = b"\x89PNG\r\n\x1a\n"
GIF = b"GIF89a"


@pytest.fixture(autouse=True)
def _no_server_bugs(request: pytest.FixtureRequest) -> Any:
    """Every test that used the server must leave no traceback inside it."""
    server = request.getfixturevalue("inat") if "inat" in request.fixturenames else None
    yield
    if server is not None:
        assert server.errors == []


def lythrum_world(inat: InatServer) -> None:
    """A small taxonomy: Plantae > Lythraceae > Lythrum > species, plus a popular look-alike."""
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(10, "Lythraceae", rank="family", parent_id=1)
    inat.add_taxon(20, "Lythrum", rank="genus", parent_id=10)
    inat.add_taxon(30, "Lythrum salicaria", parent_id=20, common_name="Purple Loosestrife")
    inat.add_taxon(31, "Lythrum salicaria tomentosum", rank="subspecies", parent_id=30)
    inat.add_taxon(32, "Lythrum hyssopifolia", parent_id=20, common_name="Hyssop Loosestrife")
    inat.add_taxon(
        33, "Lythrum intermedium", parent_id=20, is_active=False, current_synonymous_taxon_ids=[30]
    )
    inat.add_taxon(
        40,
        "Lysimachia vulgaris",
        parent_id=1,
        common_name="Garden Loosestrife",
        observations_count=5000,
    )


def get(inat: InatServer, path: str, **params: Any) -> requests.Response:
    return requests.get(inat.api_url + path, params=params, timeout=10)


def names(response: requests.Response) -> list[str]:
    return [r["name"] for r in response.json()["results"]]


def obs_ids(response: requests.Response) -> list[int]:
    return [r["id"] for r in response.json()["results"]]


# --------------------------------------------------------------------------- /v1/taxa


def test_taxa_every_word_is_a_prefix_of_some_word(inat: InatServer) -> None:
    lythrum_world(inat)
    assert sorted(names(get(inat, "/taxa", q="lyth sal"))) == [
        "Lythrum salicaria",
        "Lythrum salicaria tomentosum",
    ]
    assert names(get(inat, "/taxa", q="SALICARIA TOM")) == ["Lythrum salicaria tomentosum"]
    assert get(inat, "/taxa", q="ythrum").json()["total_results"] == 0  # not a prefix
    assert get(inat, "/taxa", q="lythrum zzz").json()["total_results"] == 0


def test_taxa_is_active_defaults_to_true(inat: InatServer) -> None:
    lythrum_world(inat)
    assert get(inat, "/taxa", q="lythrum intermedium").json()["total_results"] == 0
    found = get(inat, "/taxa", q="lythrum intermedium", is_active="any").json()["results"]
    assert [(t["name"], t["is_active"]) for t in found] == [("Lythrum intermedium", False)]
    assert found[0]["current_synonymous_taxon_ids"] == [30]
    assert names(get(inat, "/taxa", q="lythrum", is_active="false")) == ["Lythrum intermedium"]
    assert "Lythrum intermedium" in names(get(inat, "/taxa", q="lythrum", is_active="any"))


def test_taxa_common_name_match_and_relevance_order(inat: InatServer) -> None:
    lythrum_world(inat)
    body = get(inat, "/taxa", q="purple loose").json()
    assert [(t["name"], t["matched_term"]) for t in body["results"]] == [
        ("Lythrum salicaria", "Purple Loosestrife")
    ]
    scientific = get(inat, "/taxa", q="lythrum salicaria").json()["results"]
    assert scientific[0]["matched_term"] in {"Lythrum salicaria", "Lythrum salicaria tomentosum"}
    # Ordered by observations_count: the popular look-alike comes first.
    assert names(get(inat, "/taxa", q="loosestrife"))[0] == "Lysimachia vulgaris"


def test_taxa_rank_filter_and_paging(inat: InatServer) -> None:
    lythrum_world(inat)
    assert sorted(names(get(inat, "/taxa", q="lythrum", rank="species"))) == [
        "Lythrum hyssopifolia",
        "Lythrum salicaria",
    ]
    assert sorted(names(get(inat, "/taxa", q="lythrum", rank="genus,subspecies"))) == [
        "Lythrum",
        "Lythrum salicaria tomentosum",
    ]
    body = get(inat, "/taxa", q="lythrum", per_page=1000).json()
    assert body["per_page"] == 200 and body["page"] == 1 and body["total_results"] == 4
    assert get(inat, "/taxa", q="lythrum").json()["per_page"] == 30
    one = get(inat, "/taxa", q="lythrum", per_page=1, page=2).json()
    assert one["total_results"] == 4 and len(one["results"]) == 1


def test_taxon_json_shape(inat: InatServer) -> None:
    lythrum_world(inat)
    inat.add_observations(31, 3, first_id=100)
    inat.add_observations(32, 2, first_id=200)
    taxon = get(inat, "/taxa/30").json()["results"][0]
    assert taxon["ancestor_ids"] == [1, 10, 20, 30]
    assert taxon["ancestry"] == "1/10/20"
    assert taxon["parent_id"] == 20 and taxon["rank"] == "species" and taxon["rank_level"] == 10
    assert taxon["iconic_taxon_name"] == "Plantae" and taxon["default_photo"] is None
    assert taxon["preferred_common_name"] == "Purple Loosestrife"
    assert taxon["current_synonymous_taxon_ids"] is None
    assert taxon["observations_count"] == 3  # counts its descendants' observations
    assert inat.taxon(20)["observations_count"] == 5
    assert inat.taxon(40)["observations_count"] == 5000  # explicit value wins
    assert "preferred_common_name" not in inat.taxon(31)  # left out, like the real API


def test_taxa_by_ids_and_unknown_paths(inat: InatServer) -> None:
    lythrum_world(inat)
    body = get(inat, "/taxa/33,30").json()
    assert [t["id"] for t in body["results"]] == [33, 30]  # inactive ones too
    assert body["total_results"] == 2
    missing = get(inat, "/taxa/999")
    assert missing.status_code == 404 and missing.json()["status"] == 404
    for path in ("/taxa/autocomplete", "/places", "/observations/12/extra", ""):
        response = get(inat, path)
        assert response.status_code == 404, path
        assert response.headers["Content-Type"].startswith("application/json")
    assert get(inat, "/observations", taxon_id="abc").status_code == 422
    assert requests.post(inat.api_url + "/taxa", timeout=5).status_code == 405


def test_taxon_needs_existing_parent(inat: InatServer) -> None:
    with pytest.raises(ValueError):
        inat.add_taxon(2, "Orphan", parent_id=1)
    inat.add_taxon(1, "Plantae", rank="kingdom")
    with pytest.raises(ValueError):
        inat.add_taxon(1, "Again")


# --------------------------------------------------------------------------- /v1/observations


def test_observation_json_shape(inat: InatServer) -> None:
    lythrum_world(inat)
    inat.add_observation(
        57754375,
        30,
        photos=[
            {"id": 92152429, "license_code": "cc-by-nc"},
            {"id": 24355315, "license_code": "cc0", "host": "open", "ext": "jpeg"},
            {"id": 92075215, "license_code": None},
        ],
        place_ids=[6712, 7953],
        user_login="ingridt3",
    )
    obs = get(inat, "/observations", taxon_id=30).json()["results"][0]
    assert obs["id"] == 57754375
    assert obs["uri"] == "https://www.inaturalist.org/observations/57754375"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", obs["uuid"])
    assert obs["quality_grade"] == "research" and obs["observed_on"] == "2020-08-27"
    assert obs["location"] == "50.09,-104.71"
    assert obs["geojson"] == {"type": "Point", "coordinates": [-104.71, 50.09]}
    assert obs["place_ids"] == [6712, 7953]
    assert obs["taxon"]["id"] == 30 and obs["taxon"]["name"] == "Lythrum salicaria"
    assert obs["user"]["login"] == "ingridt3"
    assert obs["license_code"] == "cc-by-nc"
    static, open_, arr = obs["photos"]
    assert re.fullmatch(re.escape(inat.static_url) + r"/photos/92152429/square\.jpg\?\d{10}", static["url"])
    assert open_["url"] == f"{inat.open_url}/photos/24355315/square.jpeg"
    assert static["attribution"] == "(c) ingridt3, some rights reserved (CC BY-NC)"
    assert open_["attribution"] == "(c) ingridt3, no rights reserved (CC0)"
    assert arr["attribution"] == "(c) ingridt3, all rights reserved"
    assert arr["license_code"] is None
    assert set(static) >= {"id", "license_code", "url", "attribution", "original_dimensions"}
    assert static["flags"] == []
    ops = obs["observation_photos"]
    assert [op["position"] for op in ops] == [0, 1, 2]
    assert [op["photo"] for op in ops] == obs["photos"]
    assert all(op["id"] != op["photo"]["id"] for op in ops)
    assert inat.photo_url(92152429, "large") == static["url"].replace("square", "large")


def test_attribution_strings() -> None:
    assert attribution("a", "cc-by-nc-sa") == "(c) a, some rights reserved (CC BY-NC-SA)"
    assert attribution("a", "cc-by") == "(c) a, some rights reserved (CC BY)"
    assert attribution("a", "cc0") == "(c) a, no rights reserved (CC0)"
    assert attribution("a", None) == "(c) a, all rights reserved"


def test_taxon_id_includes_descendants(inat: InatServer) -> None:
    lythrum_world(inat)
    inat.add_observation(1, 30, photos=[{"id": 11}])
    inat.add_observation(2, 31, photos=[{"id": 21}])  # the subspecies
    inat.add_observation(3, 32, photos=[{"id": 31}])
    assert obs_ids(get(inat, "/observations", taxon_id=30)) == [2, 1]
    response = get(inat, "/observations", taxon_id=30)
    assert response.json()["results"][0]["taxon"]["id"] == 31  # its own taxon, not the queried
    assert response.json()["results"][0]["taxon"]["ancestor_ids"] == [1, 10, 20, 30, 31]  # root first
    assert obs_ids(get(inat, "/observations", taxon_id=20)) == [3, 2, 1]
    assert obs_ids(get(inat, "/observations", taxon_id="31,32")) == [3, 2]
    assert get(inat, "/observations", taxon_id=40).json()["total_results"] == 0
    assert get(inat, "/observations", taxon_id=12345).json()["total_results"] == 0


def test_photo_license_matches_any_photo(inat: InatServer) -> None:
    lythrum_world(inat)
    inat.add_observation(
        1, 30, photos=[{"id": 11, "license_code": "cc-by"}, {"id": 12, "license_code": None}]
    )
    inat.add_observation(2, 30, photos=[{"id": 21, "license_code": None}])
    inat.add_observation(
        3, 30, photos=[{"id": 31, "license_code": "cc0"}, {"id": 32, "license_code": "cc-by-nc"}]
    )
    inat.add_observation(4, 30)  # no photos at all
    body = get(inat, "/observations", taxon_id=30, photo_license="cc-by").json()
    assert body["total_results"] == 1
    # The match carries its other photos too, whatever their licence.
    assert [p["license_code"] for p in body["results"][0]["photos"]] == ["cc-by", None]
    assert obs_ids(get(inat, "/observations", photo_license="CC-BY,cc0")) == [3, 1]
    assert obs_ids(get(inat, "/observations", photo_license="cc-by-nd")) == []
    assert obs_ids(get(inat, "/observations", photos="true")) == [3, 2, 1]
    assert obs_ids(get(inat, "/observations")) == [4, 3, 2, 1]


def test_quality_place_bbox_and_date_filters(inat: InatServer) -> None:
    lythrum_world(inat)
    photo = iter(range(100, 200))

    def add(i: int, **kw: Any) -> None:
        inat.add_observation(i, 30, photos=[{"id": next(photo)}], **kw)

    add(1, quality_grade="research", observed_on="2019-12-31", place_ids=[1, 7])
    add(2, quality_grade="needs_id", observed_on="2020-01-01", latitude=10.0, longitude=20.0)
    add(3, quality_grade="casual", observed_on="2020-06-30", place_ids=[7])
    add(4, observed_on="2021-01-01", latitude=-33.9, longitude=151.2)
    assert obs_ids(get(inat, "/observations", quality_grade="research")) == [4, 1]
    assert obs_ids(get(inat, "/observations", quality_grade="research,needs_id")) == [4, 2, 1]
    assert obs_ids(get(inat, "/observations", place_id=7)) == [3, 1]
    assert obs_ids(get(inat, "/observations", place_id="1,99")) == [1]
    box = {"swlat": 0, "swlng": 0, "nelat": 20, "nelng": 30}
    assert obs_ids(get(inat, "/observations", **box)) == [2]
    south = {"swlat": -40, "swlng": 150, "nelat": -30, "nelng": 152}
    assert obs_ids(get(inat, "/observations", **south)) == [4]
    assert obs_ids(get(inat, "/observations", d1="2020-01-01", d2="2020-06-30")) == [3, 2]
    assert obs_ids(get(inat, "/observations", d2="2019-12-31")) == [1]
    assert obs_ids(get(inat, "/observations", d1="2020-06-30", unknown_param="x")) == [4, 3]


def test_paging_with_id_above_ascending(inat: InatServer) -> None:
    lythrum_world(inat)
    ids = inat.add_observations(30, 450, first_id=1000)
    assert ids == list(range(1000, 1450))
    default = get(inat, "/observations", taxon_id=30).json()
    assert default["per_page"] == 30 and default["total_results"] == 450
    assert obs_ids(get(inat, "/observations", taxon_id=30))[:2] == [1449, 1448]  # desc default
    seen: list[int] = []
    totals = []
    last = 0
    while True:
        body = get(
            inat,
            "/observations",
            taxon_id=30,
            order_by="id",
            order="asc",
            per_page=200,
            id_above=last,
        ).json()
        totals.append(body["total_results"])
        if not body["results"]:
            break
        seen += [r["id"] for r in body["results"]]
        last = seen[-1]
    assert seen == ids
    assert totals == [450, 250, 50, 0]  # counts what remains above id_above
    below = get(inat, "/observations", id_below=1010, order="desc", per_page=3).json()
    assert [r["id"] for r in below["results"]] == [1009, 1008, 1007]
    assert below["total_results"] == 10
    page2 = get(inat, "/observations", order="asc", per_page=5, page=2, id_above=1100)
    assert obs_ids(page2) == [1106, 1107, 1108, 1109, 1110]
    assert get(inat, "/observations", per_page=999).json()["per_page"] == 200


def test_result_window_is_refused(inat: InatServer) -> None:
    lythrum_world(inat)
    inat.add_observations(30, 5)
    response = get(inat, "/observations", page=51, per_page=200)
    assert response.status_code == 403
    assert response.json() == {"error": WINDOW_ERROR, "status": 403}
    assert get(inat, "/observations", page=51, per_page=1000).status_code == 403  # capped first
    assert get(inat, "/observations", page=50, per_page=200).status_code == 200
    assert get(inat, "/observations", page=10001, per_page=1).status_code == 403


def test_add_observations_ids_and_cycles(inat: InatServer) -> None:
    lythrum_world(inat)
    inat.add_observations(
        30,
        4,
        first_id=7,
        photos_per_observation=2,
        license_codes=("cc-by", None, "cc0"),
        quality_grades=("research", "needs_id"),
        hosts=("static", "open"),
    )
    body = get(inat, "/observations", order="asc").json()["results"]
    assert [[p["id"] for p in o["photos"]] for o in body] == [[70, 71], [80, 81], [90, 91], [100, 101]]
    licences = [p["license_code"] for o in body for p in o["photos"]]
    assert licences == ["cc-by", None, "cc0", "cc-by", None, "cc0", "cc-by", None]
    assert [o["quality_grade"] for o in body] == ["research", "needs_id"] * 2
    assert [o["photos"][1]["url"].startswith(inat.open_url) for o in body] == [True] * 4
    inat.add_observations(30, 2, first_id=50, first_photo_id=5000, photos_per_observation=3)
    assert [p["id"] for p in inat.observation(51)["photos"]] == [5003, 5004, 5005]
    with pytest.raises(ValueError):
        inat.add_observations(30, 1, first_id=7)  # observation id taken
    with pytest.raises(ValueError):
        inat.add_observations(30, 1, first_id=900, first_photo_id=70)  # photo id taken
    with pytest.raises(ValueError):
        inat.add_observation(901, 12345)  # unknown taxon
    assert get(inat, "/observations").json()["total_results"] == 6  # failed calls add nothing


def test_padding_makes_pages_heavy(inat: InatServer) -> None:
    lythrum_world(inat)
    inat.add_observations(30, 200, padding=5000)
    response = get(inat, "/observations", per_page=200)
    assert len(response.content) > 1_000_000
    assert len(response.json()["results"][0]["description"]) == 5000


# --------------------------------------------------------------------------- photo hosts


def photo_world(inat: InatServer) -> None:
    lythrum_world(inat)
    inat.add_observation(
        1,
        30,
        photos=[
            {"id": 11, "ext": "jpg"},
            {"id": 12, "ext": "png", "host": "open"},
            {"id": 13, "ext": "gif"},
            {"id": 14, "flagged": True},
            {"id": 15, "gone": 410},
            {"id": 16, "gone": 404, "host": "open", "ext": "jpeg"},
            {"id": 17, "content_type": "text/html"},
        ],
    )


def test_photo_bytes_and_content_types(inat: InatServer) -> None:
    photo_world(inat)
    for pid, magic, ctype in ((11, JPEG, "image/jpeg"), (12, PNG, "image/png"), (13, GIF, "image/gif")):
        lengths = []
        for size in ("square", "thumb", "small", "medium", "large", "original"):
            response = requests.get(inat.photo_url(pid, size), timeout=5)
            assert response.status_code == 200
            assert response.headers["Content-Type"] == ctype
            assert int(response.headers["Content-Length"]) == len(response.content)
            assert response.content.startswith(magic)
            assert response.content == inat.photo_bytes(pid, size)
            lengths.append(len(response.content))
        assert lengths == sorted(lengths) and 2000 <= lengths[0] < 2600
        assert 50_000 <= lengths[-1] < 60_000
    assert inat.photo_bytes(11, "medium").endswith(b"\xff\xd9")
    assert inat.photo_bytes(11, "medium") != inat.photo_bytes(11, "small")
    assert inat.photo_bytes(11, "medium") == inat.photo_bytes(11, "medium")  # deterministic
    assert inat.photo_bytes(11, "medium") != inat.photo_bytes(13, "medium")
    assert requests.get(inat.photo_url(17), timeout=5).headers["Content-Type"] == "text/html"
    inat.photo_size_bytes = {"medium": 300_000}
    assert len(requests.get(inat.photo_url(11, "medium"), timeout=5).content) == 300_000


def test_photos_are_real_images_of_their_announced_size(inat: InatServer) -> None:
    """Loaders that decode (Pillow, as Hugging Face's imagefolder does) get a whole image of
    the size's pixels, whatever byte length the server announces."""
    photo_world(inat)
    for pid in (11, 12, 13):  # jpg, png, gif; original dimensions 1536 x 2048, 1188 square, 2048 x 1365
        for size in ("square", "thumb", "small", "medium", "large", "original"):
            picture = Image.open(io.BytesIO(requests.get(inat.photo_url(pid, size), timeout=5).content))
            picture.load()
            assert picture.size == photo_pixels(pid, size)
    sizes = [photo_pixels(11, s) for s in ("square", "small", "original")]
    assert sizes == [(75, 75), (180, 240), (1536, 2048)]
    assert photo_pixels(12, "original") == (1188, 1188) and photo_pixels(13, "medium") == (500, 333)
    for length in (300, 301, 302, 303, 304, 305, 4_000, 65_600, 140_000):
        inat.photo_size_bytes = {"square": length}
        for pid in (11, 12, 13):
            body = inat.photo_bytes(pid, "square")
            assert len(body) == length and f"inat-test-photo {pid} square".encode() in body
            picture = Image.open(io.BytesIO(body))
            picture.load()
            assert picture.size == (75, 75)


def test_photo_404s_and_gone(inat: InatServer) -> None:
    photo_world(inat)
    static_photo = inat.photo_url(11, "medium")
    assert requests.get(static_photo.split("?")[0], timeout=5).status_code == 200  # no query
    wrong_host = static_photo.replace(inat.static_url, inat.open_url)
    assert requests.get(wrong_host, timeout=5).status_code == 404
    open_photo = inat.photo_url(12, "small")
    assert requests.get(open_photo.replace(inat.open_url, inat.static_url), timeout=5).status_code == 404
    for url in (
        f"{inat.static_url}/photos/11/huge.jpg",
        f"{inat.static_url}/photos/11/medium.png",
        f"{inat.static_url}/photos/99999/medium.jpg",
        f"{inat.open_url}/v1/taxa",
        f"{inat.static_url}/elsewhere",
    ):
        assert requests.get(url, timeout=5).status_code == 404, url
    assert requests.get(inat.photo_url(15, "medium"), timeout=5).status_code == 410
    assert requests.get(inat.photo_url(16, "original"), timeout=5).status_code == 404
    head = requests.head(inat.photo_url(11, "large"), timeout=5)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) > 25_000


def test_flagged_photo_gets_placeholder(inat: InatServer) -> None:
    photo_world(inat)
    photos = {p["id"]: p for p in get(inat, "/observations").json()["results"][0]["photos"]}
    assert photos[14]["url"] == inat.static_url + PLACEHOLDER_PATH
    assert photos[14]["flags"] and photos[14]["flags"][0]["flag"] == "copyright infringement"
    placeholder = requests.get(photos[14]["url"], timeout=5)
    assert placeholder.status_code == 200 and placeholder.content.startswith(PNG)
    assert placeholder.headers["Content-Type"] == "image/png"
    assert [r.path for r in inat.requests_to("/assets/")] == [PLACEHOLDER_PATH]


def test_photo_without_a_file_gets_the_default_image(inat: InatServer) -> None:
    lythrum_world(inat)
    inat.add_observation(1, 30, photos=[{"id": 21, "no_file": True}])
    photo = get(inat, "/observations").json()["results"][0]["photos"][0]
    assert photo["url"] == inat.static_url + NO_FILE_PATH and not photo["flags"]
    medium = requests.get(photo["url"].replace("square", "medium"), timeout=5)
    assert medium.status_code == 200 and medium.content.startswith(PNG)


# --------------------------------------------------------------------------- recording


def test_requests_are_recorded(inat: InatServer) -> None:
    photo_world(inat)
    session = requests.Session()
    session.headers["User-Agent"] = "inatdl-test/1"
    session.get(inat.api_url + "/observations", params={"taxon_id": "30", "per_page": "5"})
    session.get(inat.photo_url(11, "small"))
    session.get(inat.photo_url(12, "small"))
    assert [(r.host, r.path, r.status) for r in inat.requests] == [
        ("static", "/v1/observations", 200),
        ("static", "/photos/11/small.jpg", 200),
        ("open", "/photos/12/small.png", 200),
    ]
    api = inat.api_requests()[0]
    assert api.query == {"taxon_id": "30", "per_page": "5"}
    assert api.header("user-agent") == "inatdl-test/1" and api.method == "GET"
    assert api.fault is None and api.target == "/v1/observations?taxon_id=30&per_page=5"
    assert [r.path for r in inat.photo_requests()] == ["/photos/11/small.jpg", "/photos/12/small.png"]
    assert len(inat.requests_to("/photos/", host="open")) == 1
    assert inat.connections_opened == 2  # keep-alive: one connection per host
    inat.clear_requests()
    assert inat.requests == []


def test_keep_alive_under_threads(inat: InatServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    lythrum_world(inat)
    inat.add_observations(30, 64)
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=8)
    session.mount("http://", adapter)
    urls = [inat.photo_url(i * 10, "thumb") for i in range(1, 65)] * 3
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda u: session.get(u, timeout=5).status_code, urls))
    assert statuses == [200] * len(urls)
    assert inat.connections_opened <= 8


def test_stop_does_not_hang_on_open_connections() -> None:
    server = InatServer().start()
    server.add_taxon(1, "Plantae", rank="kingdom")
    server.add_observation(1, 1, photos=[{"id": 1}])
    server.add_fault(Fault("drip", target="photo", delay=1.0, chunk_size=16))
    session = requests.Session()
    session.get(server.api_url + "/taxa/1")  # an idle keep-alive connection
    raw = socket.create_connection(("127.0.0.1", int(server.static_url.rsplit(":", 1)[1])))
    raw.sendall(b"GET /photos/1/medium.jpg HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)  # the drip is now in progress
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    raw.close()


# --------------------------------------------------------------------------- faults


def test_fault_status_with_retry_after(inat: InatServer) -> None:
    photo_world(inat)
    inat.add_fault(Fault("status", target="api", status=429, retry_after="7"))
    response = get(inat, "/taxa/30")
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.json()["status"] == 429
    inat.clear_faults()
    date = http_date(30)
    inat.add_fault(Fault("status", target="photo", status=503, retry_after=date))
    photo = requests.get(inat.photo_url(11), timeout=5)
    assert photo.status_code == 503 and photo.headers["Retry-After"] == date
    assert photo.headers["Content-Type"].startswith("text/html")
    assert get(inat, "/taxa/30").status_code == 200  # target "photo" leaves the API alone
    assert [r.fault for r in inat.requests] == ["status:429", "status:503", None]
    assert [r.status for r in inat.requests] == [429, 503, 200]


def test_fault_reset(inat: InatServer) -> None:
    photo_world(inat)
    inat.add_fault(Fault("reset", target="taxa", times=1))
    with pytest.raises(requests.ConnectionError):
        get(inat, "/taxa/30")
    assert get(inat, "/taxa/30").status_code == 200
    assert [(r.status, r.fault) for r in inat.requests] == [(0, "reset"), (200, None)]


def test_fault_reset_mid_body_and_short(inat: InatServer) -> None:
    photo_world(inat)
    url = inat.photo_url(11, "large")
    inat.add_fault(Fault("reset_mid_body", target="photo", times=1))
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        requests.get(url, timeout=5)
    inat.add_fault(Fault("short", target="photo", times=1))
    response = requests.get(url, stream=True, timeout=5)
    expected = len(inat.photo_bytes(11, "large"))
    assert int(response.headers["Content-Length"]) == expected
    got = bytearray()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for chunk in response.iter_content(4096):
            got += chunk
    assert 0 < len(got) < expected
    assert requests.get(url, timeout=5).content == inat.photo_bytes(11, "large")


def test_fault_html_badjson_empty(inat: InatServer) -> None:
    photo_world(inat)
    inat.add_fault(Fault("html", target="observations", times=1))
    html = get(inat, "/observations")
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    inat.add_fault(Fault("badjson", target="observations", times=1))
    bad = get(inat, "/observations")
    assert bad.status_code == 200 and bad.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError):
        bad.json()
    inat.add_fault(Fault("empty", target="photo", times=1))
    empty = requests.get(inat.photo_url(11), timeout=5)
    assert empty.status_code == 200 and empty.content == b""
    assert empty.headers["Content-Length"] == "0"
    assert get(inat, "/observations").json()["total_results"] == 1


def test_fault_first_attempts_then_success(inat: InatServer) -> None:
    photo_world(inat)
    inat.add_fault(Fault("status", target="photo", status=500, first_attempts=1))
    urls = [inat.photo_url(11, "small"), inat.photo_url(11, "medium")]
    assert [requests.get(u, timeout=5).status_code for u in urls + urls] == [500, 500, 200, 200]


def test_fault_times_and_targeting(inat: InatServer) -> None:
    photo_world(inat)
    fault = inat.add_fault(Fault("status", target="any", status=502, times=2, host="open"))
    assert get(inat, "/taxa/30").status_code == 200  # static host untouched
    statuses = [requests.get(inat.photo_url(12), timeout=5).status_code for _ in range(4)]
    assert statuses == [502, 502, 200, 200] and fault.hits == 2
    inat.remove_fault(fault)
    inat.add_fault(Fault("status", target="photo", path_contains="/medium."))
    assert requests.get(inat.photo_url(11, "small"), timeout=5).status_code == 200
    assert requests.get(inat.photo_url(11, "medium"), timeout=5).status_code == 503
    inat.clear_faults()
    assert requests.get(inat.photo_url(11, "medium"), timeout=5).status_code == 200


def test_fault_rate_is_deterministic(inat: InatServer) -> None:
    lythrum_world(inat)
    inat.add_observations(30, 60)
    urls = [inat.photo_url(i * 10, "medium") for i in range(1, 61)]

    def failing(seed: int) -> list[int]:
        inat.clear_faults()
        inat.add_fault(Fault("status", target="photo", rate=0.5, seed=seed))
        return [i for i, u in enumerate(urls) if requests.get(u, timeout=5).status_code == 503]

    first = failing(1)
    assert failing(1) == first  # same seed, same URLs
    assert 10 < len(first) < 50
    assert failing(2) != first
    predictor = Fault("status", rate=0.5, seed=1)
    targets = [urlsplit(u).path + "?" + urlsplit(u).query for u in urls]
    assert [i for i, t in enumerate(targets) if predictor.selects(t)] == first


def test_throttle(inat: InatServer) -> None:
    lythrum_world(inat)
    fault = inat.throttle(after=2, every=3)
    responses = [get(inat, "/taxa/30") for _ in range(10)]
    assert [r.status_code for r in responses] == [200, 200, 429, 200, 200, 429, 200, 200, 429, 200]
    assert responses[2].headers["Retry-After"] == "1"
    assert fault.hits == 3
    assert [r.fault for r in inat.requests].count("throttle") == 3
    assert requests.get(inat.static_url + PLACEHOLDER_PATH, timeout=5).status_code == 200


def test_fault_latency_drip_and_global_latency(inat: InatServer) -> None:
    photo_world(inat)
    url = inat.photo_url(11, "small")
    inat.add_fault(Fault("latency", target="photo", delay=0.2, times=1))
    started = time.monotonic()
    assert requests.get(url, timeout=5).content == inat.photo_bytes(11, "small")
    assert time.monotonic() - started >= 0.2
    inat.add_fault(Fault("drip", target="photo", delay=0.02, chunk_size=1024, times=1))
    started = time.monotonic()
    assert requests.get(url, timeout=5).content == inat.photo_bytes(11, "small")
    assert time.monotonic() - started >= 0.1  # 6+ chunks, 0.02 s apart
    inat.latency = 0.1
    started = time.monotonic()
    get(inat, "/taxa/30")
    assert time.monotonic() - started >= 0.1


def test_a_held_drip_goes_on_when_released_but_for_its_last_piece(inat: InatServer) -> None:
    """The body is in flight until its reader stops: held after ``hold_after`` bytes until
    ``release`` is set, then sent on, all but the last piece."""
    photo_world(inat)
    body, release = inat.photo_bytes(11, "small"), threading.Event()
    inat.add_fault(Fault("drip", target="photo", delay=0.0, chunk_size=256, hold_after=512, release=release))
    last_piece = (len(body) - 1) // 256 * 256
    with socket.create_connection(("127.0.0.1", int(inat.static_url.rsplit(":", 1)[1]))) as raw:
        raw.sendall(f"GET {urlsplit(inat.photo_url(11, 'small')).path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = b""

        def body_then_nothing_more(length: int) -> bytes:
            nonlocal got
            raw.settimeout(10)
            while len(got.partition(b"\r\n\r\n")[2]) < length:
                got += raw.recv(65536)
            raw.settimeout(0.3)
            with pytest.raises(TimeoutError):
                got += raw.recv(65536)  # held
            return got.partition(b"\r\n\r\n")[2]

        assert body_then_nothing_more(512) == body[:512]
        release.set()
        assert body_then_nothing_more(last_piece) == body[:last_piece]


def test_fault_no_length_endless_redirect(inat: InatServer) -> None:
    photo_world(inat)
    url = inat.photo_url(11, "medium")
    inat.add_fault(Fault("no_length", target="photo", times=1))
    response = requests.get(url, timeout=5)
    assert "Content-Length" not in response.headers
    assert response.content == inat.photo_bytes(11, "medium")
    inat.add_fault(Fault("endless", target="photo", times=1))
    with requests.get(url, stream=True, timeout=5) as endless:
        assert endless.headers["Content-Type"] == "image/jpeg"
        assert "Content-Length" not in endless.headers
        read = 0
        for chunk in endless.iter_content(65536):
            if read == 0:
                assert chunk.startswith(JPEG)
            read += len(chunk)
            if read > 3_000_000:
                break
    assert read > 3_000_000
    target = inat.static_url + PLACEHOLDER_PATH
    inat.add_fault(Fault("redirect", target="photo", location=target, times=1))
    moved = requests.get(url, timeout=5, allow_redirects=False)
    assert moved.status_code == 302 and moved.headers["Location"] == target
    assert requests.get(url, timeout=5).status_code == 200


def test_fault_validation() -> None:
    with pytest.raises(ValueError):
        Fault("explode")
    with pytest.raises(ValueError):
        Fault("status", target="everything")
    with pytest.raises(ValueError):
        Fault("redirect")
    with pytest.raises(ValueError):
        Fault("status", rate=1.5)
    assert Fault("status", status=429).name == "status:429"
    assert Fault("reset").name == "reset"


# --------------------------------------------------------------------------- scale


def test_big_taxon_pages_whole_with_id_above(inat: InatServer) -> None:
    lythrum_world(inat)
    ids = inat.add_observations(30, 25_000, first_id=5_000_000, license_codes=("cc-by", None))
    session = requests.Session()
    seen: list[int] = []
    last = 0
    first_total = None
    while True:
        body = session.get(
            inat.api_url + "/observations",
            params={
                "taxon_id": 30,
                "photos": "true",
                "per_page": 200,
                "order_by": "id",
                "order": "asc",
                "id_above": last,
            },
            timeout=10,
        ).json()
        if first_total is None:
            first_total = body["total_results"]
        if not body["results"]:
            break
        seen += [r["id"] for r in body["results"]]
        last = seen[-1]
    assert first_total == 25_000
    assert seen == ids
    assert inat.taxon(20)["observations_count"] == 25_000
    licensed = session.get(
        inat.api_url + "/observations",
        params={"taxon_id": 30, "photo_license": "cc-by", "per_page": 0},
        timeout=10,
    ).json()
    assert licensed["total_results"] == 12_500 and licensed["results"] == []


def leaves(response: requests.Response) -> list[tuple[int, int]]:
    body = response.json()
    return [(r["taxon"]["id"], r["count"]) for r in body["results"]]


def test_species_counts_lists_leaf_taxa_as_the_real_api(inat: InatServer) -> None:
    lythrum_world(inat)
    inat.add_taxon(34, "Lythrum salicaria tomentosum villosum", rank="variety", parent_id=31)
    inat.add_taxon(35, "Lythrum hyssopifolia minor", rank="variety", parent_id=32)
    inat.add_observations(30, 3, first_id=1, place_ids=(7,))
    inat.add_observations(31, 2, first_id=10, place_ids=(7,))  # counted for its species, 30
    inat.add_observations(35, 4, first_id=20, place_ids=(7,))  # counted for 32, never listed itself
    inat.add_observations(20, 1, first_id=30, place_ids=(7,))  # the genus: an ancestor, dropped
    inat.add_observations(40, 1, first_id=40, place_ids=(8,))
    inat.add_observation(50, 40, photos=[], place_ids=(7,))
    body = get(inat, "/observations/species_counts", place_id=7).json()
    assert (body["total_results"], body["page"], body["per_page"]) == (3, 1, 500)
    assert [(r["count"], r["taxon"]["name"], r["taxon"]["rank"]) for r in body["results"]] == [
        (5, "Lythrum salicaria", "species"),
        (4, "Lythrum hyssopifolia", "species"),
        (1, "Lysimachia vulgaris", "species"),  # the observation without photos
    ]
    assert leaves(get(inat, "/observations/species_counts", place_id=7, photos="true")) == [(30, 5), (32, 4)]
    # a variety of a subspecies is counted for the subspecies, which then hides the species
    inat.add_observations(34, 1, first_id=60, place_ids=(7,))
    assert leaves(get(inat, "/observations/species_counts", place_id=7, photos="true")) == [(32, 4), (31, 1)]
    assert leaves(get(inat, "/observations/species_counts", taxon_id=32)) == [(32, 4)]
    # only genus-level observations: the genus is the leaf, unless hrank leaves it out
    inat.add_observations(20, 1, first_id=70, place_ids=(9,))
    assert leaves(get(inat, "/observations/species_counts", place_id=9)) == [(20, 1)]
    assert leaves(get(inat, "/observations/species_counts", place_id=9, hrank="species")) == []
    both = get(inat, "/observations/species_counts", place_id="7,8", hrank="species", lrank="species")
    assert leaves(both) == [(30, 3), (40, 2)]  # rank_level 10 only: the subspecies' and varieties' left out
    assert leaves(get(inat, "/observations/species_counts", place_id="7,8", order="asc")) == [
        (31, 1),
        (40, 2),
        (32, 4),
    ]


def test_species_counts_pages_by_page_up_to_500(inat: InatServer) -> None:
    inat.add_taxon(1, "Plantae", rank="kingdom")
    for i in range(2, 1202):
        inat.add_taxon(i, f"Species {i}", parent_id=1)
        inat.add_observations(i, 1 + i % 2, first_id=i * 10)
    first = get(inat, "/observations/species_counts", per_page=1000).json()
    assert (first["total_results"], first["per_page"], len(first["results"])) == (1200, 500, 500)
    third = get(inat, "/observations/species_counts", page=3).json()
    assert len(third["results"]) == 200
    seen = [t for page in (1, 2, 3) for t, _ in leaves(get(inat, "/observations/species_counts", page=page))]
    assert sorted(seen) == list(range(2, 1202))
    counts = [
        n for page in (1, 2, 3) for _, n in leaves(get(inat, "/observations/species_counts", page=page))
    ]
    assert counts == sorted(counts, reverse=True)
    assert get(inat, "/observations/species_counts", page=4).json()["results"] == []
    assert get(inat, "/observations/species_counts", per_page=0).json()["results"] == []
    ids = ",".join(str(i) for i in range(2, 33))
    too_many = get(inat, f"/taxa/{ids}")
    assert too_many.status_code == 422 and too_many.json()["error"] == "Too many IDs"
    assert len(get(inat, f"/taxa/{ids.rsplit(',', 1)[0]}").json()["results"]) == 30


def test_photo_hosts_count_what_they_send_and_serve_ranges(inat: InatServer) -> None:
    """Body bytes are counted as written to the socket, read or not; Range gives 206 while
    If-Range names the body, the whole 200 when it no longer does."""
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_observation(10, 1, photos=[{"id": 100, "license_code": "cc0"}])
    url = inat.photo_url(100, "medium")
    body = inat.photo_bytes(100, "medium")
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as unread:  # never reads a byte
        unread.sendall(f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        deadline = time.monotonic() + 5
        while inat.bytes_sent() < len(body):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert inat.bytes_sent() == len(body) and inat.sent_in_full()[parts.path] == 1
    whole = requests.get(url, timeout=5)
    etag = whole.headers["ETag"]
    rest = requests.get(url, headers={"Range": "bytes=100-", "If-Range": etag}, timeout=5)
    assert rest.status_code == 206 and rest.content == body[100:]
    assert rest.headers["Content-Range"] == f"bytes 100-{len(body) - 1}/{len(body)}"
    changed = requests.get(url, headers={"Range": "bytes=100-", "If-Range": '"other"'}, timeout=5)
    assert changed.status_code == 200 and changed.content == body
    beyond = requests.get(url, headers={"Range": f"bytes={len(body)}-"}, timeout=5)
    assert beyond.status_code == 416
    assert inat.photo_requests()[-3].sent == len(body) - 100


def test_coordinate_privacy_as_inaturalist_gives_it(inat: InatServer) -> None:
    """By default an observation is open with no accuracy; a threatened taxon or the
    observer's geoprivacy obscures it (public accuracy at least the blurring cell); private
    coordinates are not shown; ``omit`` leaves fields out."""
    inat.add_taxon(1, "Plantae", rank="kingdom")
    for obs_id in range(1, 6):
        inat.add_observation(obs_id, 1, photos=[{"id": obs_id * 10}])
    inat.set_coordinates_privacy(2, accuracy=12, taxon_geoprivacy="obscured")
    inat.set_coordinates_privacy(3, accuracy=40_000, geoprivacy="obscured")
    inat.set_coordinates_privacy(4, accuracy=5, geoprivacy="private")
    inat.set_coordinates_privacy(5, accuracy=374, omit=("obscured", "uuid"))
    with pytest.raises(ValueError, match="geoprivacy"):
        inat.set_coordinates_privacy(5, geoprivacy="hidden")
    answer = requests.get(f"{inat.api_url}/observations", params={"per_page": 10}, timeout=5).json()
    fields = (
        "positional_accuracy",
        "public_positional_accuracy",
        "obscured",
        "geoprivacy",
        "taxon_geoprivacy",
    )
    got = {o["id"]: tuple(o.get(f, "absent") for f in fields) for o in answer["results"]}
    assert got == {
        1: (None, None, False, None, None),
        2: (12, OBSCURED_ACCURACY, True, None, "obscured"),
        3: (40_000, 40_000, True, "obscured", None),
        4: (5, None, True, "private", None),
        5: (374, 374, "absent", None, None),
    }
    by_id = {o["id"]: o for o in answer["results"]}
    assert by_id[4]["location"] is None and by_id[4]["geojson"] is None
    assert by_id[3]["location"] == "50.09,-104.71"
    assert "uuid" not in by_id[5] and len(by_id[1]["uuid"]) == 36
