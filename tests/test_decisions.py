"""The pure decisions, without I/O: which photo to take, from where, with what fields; the
query, the cursor's name and the walk's stopping rule; folder names, photo URLs, byte sizes;
the budget's window arithmetic. Most of these were written to kill mutants that survived
the mutation run (tests/README.md)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeClock

from inatdl.budget import ByteBudget, Ticket
from inatdl.client import JSON, build_session
from inatdl.constants import COMMIT_EVERY_PHOTOS, QUALITY_GRADES
from inatdl.naming import photo_extension, safe_folder_name, sized_url
from inatdl.observations import (
    SKIP_LICENCE,
    SKIP_PLACEHOLDER,
    SKIP_URL,
    Filters,
    PhotoChoice,
    choose_photo,
    coordinates,
    coordinates_obscured,
    observation_fields,
    observation_pages,
    observation_photos,
)
from inatdl.photo import PhotoRecord
from inatdl.state import DONE, Outcome, PhotoJob, Store
from inatdl.units import format_size, parse_size

URL = "https://static.inaturalist.org/photos/42/square.jpg?1598551272"


def photo(license_code: Any = "cc-by", url: str = URL, **more: Any) -> JSON:
    return {"id": 42, "license_code": license_code, "url": url, "attribution": "(c) ann", **more}


# Which photo ----------------------------------------------------------------------------


def test_a_photo_of_an_asked_licence_is_taken_at_the_asked_size() -> None:
    assert choose_photo(photo(), ("cc0", "cc-by"), "large") == PhotoChoice(
        42,
        url="https://static.inaturalist.org/photos/42/large.jpg?1598551272",
        extension="jpg",
        license_code="cc-by",
        attribution="(c) ann",
    )


@pytest.mark.parametrize(
    ("license_code", "licences"),
    [
        ("cc-by-nc", ("cc-by",)),  # another CC licence than the ones asked
        ("cc-by", ("cc-by-nc", "cc-by-sa")),  # a prefix of an asked one is not it
        (None, ("cc0", "cc-by", "cc-by-nc")),  # all rights reserved: never
        ("", ("cc-by",)),
        (7, ("cc-by",)),
    ],
)
def test_a_photo_of_another_licence_is_skipped(license_code: Any, licences: tuple[str, ...]) -> None:
    assert choose_photo(photo(license_code), licences, "medium") == PhotoChoice(42, skip=SKIP_LICENCE)


def test_the_licence_is_compared_in_lower_case() -> None:
    choice = choose_photo(photo("CC-BY-SA"), ("cc-by-sa",), "small")
    assert (choice.skip, choice.license_code) == ("", "cc-by-sa")


def test_a_placeholder_is_skipped_whatever_its_licence() -> None:
    flagged = photo(url="https://static.inaturalist.org/assets/copyright-infringement-square.png")
    assert choose_photo(flagged, ("cc-by",), "medium") == PhotoChoice(42, skip=SKIP_PLACEHOLDER)


@pytest.mark.parametrize(
    "url", ["https://h/photos/42/square.exe", "https://h/photos/42/banner.jpg", "", None]
)
def test_a_url_without_a_size_word_or_a_photo_extension_is_skipped(url: Any) -> None:
    assert choose_photo(photo(url=url), ("cc-by",), "medium") == PhotoChoice(42, skip=SKIP_URL)


def test_a_missing_attribution_is_empty_not_none() -> None:
    assert choose_photo(photo(attribution=None), ("cc-by",), "medium").attribution == ""


# Which photos an observation has ----------------------------------------------------------


def test_photos_come_from_photos_or_else_observation_photos_once_each() -> None:
    a, b = {"id": 1, "url": "a"}, {"id": 2, "url": "b"}
    assert observation_photos({"photos": [a, b, {"id": 1, "url": "again"}]}) == [a, b]
    assert observation_photos({"photos": [], "observation_photos": [{"photo": b}, {"photo": a}]}) == [b, a]
    bad = [None, {"id": "3"}, {"id": 0}, {"id": True}, {"url": "no id"}, "text", a]
    assert observation_photos({"photos": bad}) == [a]
    assert observation_photos({"observation_photos": [None, {"photo": None}, {"photo": a}]}) == [a]
    assert observation_photos({}) == []


# Where and when ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("observation", "expected"),
    [
        ({"geojson": {"coordinates": [-104.71, 50.09]}, "location": "50.09,-104.71"}, (50.09, -104.71)),
        ({"geojson": {"coordinates": [151.2, -33.8]}}, (-33.8, 151.2)),  # geojson is [lng, lat]
        ({"geojson": None, "location": "64.1,-21.9"}, (64.1, -21.9)),
        ({"location": "-0.5,179.25"}, (-0.5, 179.25)),
        ({"geojson": {"coordinates": "nowhere"}, "location": "1.5,2.5"}, (1.5, 2.5)),
        ({"geojson": {"coordinates": [1.0, 2.0]}, "location": "8,9"}, (2.0, 1.0)),  # geojson first
        ({"geojson": {"coordinates": [1.0, 2.0, 350.0]}}, (2.0, 1.0)),  # with an altitude
        ({"geojson": None, "location": None}, (None, None)),
        ({"location": "north"}, (None, None)),
        ({"location": "1,2,3"}, (None, None)),
        ({}, (None, None)),
    ],
)
def test_coordinates_from_geojson_else_location(
    observation: JSON, expected: tuple[float | None, float | None]
) -> None:
    assert coordinates(observation) == expected


def test_observation_fields_take_each_value_of_its_type_or_none() -> None:
    observation = {
        "id": 9,
        "taxon": {"id": 70001, "name": "Lythrum salicaria tomentosum"},
        "user": {"login": "samroom"},
        "quality_grade": "needs_id",
        "observed_on": "2020-08-27",
        "uri": "https://www.inaturalist.org/observations/9",
        "location": "50.09,-104.71",
        "uuid": "c44b91f3-534d-48c4-933d-a8b4e1d8f87b",
        "positional_accuracy": 12,
        "public_positional_accuracy": 27_801.6,
        "obscured": True,
    }
    assert observation_fields(observation) == {
        "observation_id": 9,
        "observed_taxon_id": 70001,
        "observed_taxon_name": "Lythrum salicaria tomentosum",
        "observer": "samroom",
        "quality_grade": "needs_id",
        "latitude": 50.09,
        "longitude": -104.71,
        "observed_on": "2020-08-27",
        "observation_url": "https://www.inaturalist.org/observations/9",
        "observation_uuid": "c44b91f3-534d-48c4-933d-a8b4e1d8f87b",
        "positional_accuracy": 27_802,
        "coordinates_obscured": True,
    }
    odd = {"id": 10, "taxon": "x", "user": ["x"], "quality_grade": 3, "observed_on": 20200101, "uuid": 7}
    assert observation_fields(odd) == {
        "observation_id": 10,
        "observed_taxon_id": None,
        "observed_taxon_name": None,
        "observer": None,
        "quality_grade": None,
        "latitude": None,
        "longitude": None,
        "observed_on": None,
        "observation_url": "https://www.inaturalist.org/observations/10",
        "observation_uuid": None,
        "positional_accuracy": None,
        "coordinates_obscured": None,
    }
    assert observation_fields({"id": 11, "taxon": {"id": -5, "name": None}})["observed_taxon_id"] is None
    assert observation_fields({"id": 12, "taxon": {"id": 0}})["observed_taxon_id"] is None


@pytest.mark.parametrize(
    ("observation", "obscured"),
    [
        ({"obscured": True}, True),
        ({"obscured": True, "geoprivacy": None, "taxon_geoprivacy": "open"}, True),
        ({"geoprivacy": "obscured"}, True),  # the observer's choice
        ({"geoprivacy": "private", "obscured": False}, True),
        ({"taxon_geoprivacy": "obscured"}, True),  # a threatened taxon
        ({"taxon_geoprivacy": "private"}, True),
        ({"obscured": False, "geoprivacy": None, "taxon_geoprivacy": None}, False),
        ({"obscured": False, "geoprivacy": "open", "taxon_geoprivacy": "open"}, False),
        ({}, None),  # the answer says nothing
        ({"geoprivacy": "open", "taxon_geoprivacy": None}, None),
        ({"obscured": "true"}, None),
        ({"obscured": 1}, None),
    ],
)
def test_coordinates_are_obscured_when_any_of_the_answers_says_so(
    observation: JSON, obscured: bool | None
) -> None:
    assert coordinates_obscured(observation) is obscured


@pytest.mark.parametrize(
    ("accuracy", "metres"),
    [(23, 23), (0, 0), (27_801.4, 27_801), (None, None), (True, None), ("374", None), (-1, None),
     (float("nan"), None), (float("inf"), None)],
)  # fmt: skip
def test_the_public_accuracy_in_whole_metres(accuracy: object, metres: int | None) -> None:
    fields = observation_fields({"id": 1, "public_positional_accuracy": accuracy, "positional_accuracy": 5})
    assert fields["positional_accuracy"] == metres


def test_the_observation_url_is_the_one_the_api_gives() -> None:
    """Observations of the iNaturalist Network's sites link there, not to inaturalist.org."""
    fields = observation_fields({"id": 13, "uri": "https://www.naturalista.mx/observations/13"})
    assert fields["observation_url"] == "https://www.naturalista.mx/observations/13"


# The query and its cursor's name -------------------------------------------------------------


def test_params_carry_every_filter_and_only_those_given() -> None:
    assert Filters(("cc0", "cc-by")).params([61299, 61298]) == {
        "taxon_id": "61299,61298",
        "photos": "true",
        "photo_license": "cc0,cc-by",
    }
    full = Filters(
        ("cc-by",),
        quality=("research",),
        place_id=6712,
        bbox=(40.0, -110.5, 55.0, -100.0),
        observed_from="2020-01-01",
        observed_to="2020-12-31",
    )
    assert full.params([1]) == {
        "taxon_id": "1",
        "photos": "true",
        "photo_license": "cc-by",
        "quality_grade": "research",
        "place_id": 6712,
        "swlat": 40.0,
        "swlng": -110.5,
        "nelat": 55.0,
        "nelng": -100.0,
        "d1": "2020-01-01",
        "d2": "2020-12-31",
    }
    assert Filters(("cc0", "cc-by"), quality=("research", "needs_id")).params([1])["quality_grade"] == (
        "research,needs_id"
    )
    every_grade = Filters(("cc-by",), quality=tuple(reversed(QUALITY_GRADES)))
    assert "quality_grade" not in every_grade.params([1])  # all grades is no filter


def test_a_cursor_is_named_by_taxon_size_and_filters_in_any_order() -> None:
    one = Filters(("cc0", "cc-by"), quality=("research", "needs_id"))
    same = Filters(("cc-by", "cc0"), quality=("needs_id", "research"))
    assert one.key(5, "medium") == same.key(5, "medium")
    others = {
        one.key(6, "medium"),
        one.key(5, "small"),
        Filters(("cc0",), quality=("research", "needs_id")).key(5, "medium"),
        Filters(("cc0", "cc-by"), quality=("research",)).key(5, "medium"),
        Filters(("cc0", "cc-by"), quality=("research", "needs_id"), place_id=1).key(5, "medium"),
    }
    assert one.key(5, "medium") not in others and len(others) == 5


def test_cursor_names_in_state_files_stay_the_same() -> None:
    """Saved walks are found by these names: another spelling would restart every one."""
    key = Filters(("cc0", "cc-by"), quality=("research", "needs_id")).key(5, "medium")
    assert key == "photo_license=cc-by,cc0&photos=true&quality_grade=needs_id,research&taxon_id=5&size=medium"


# The walk ----------------------------------------------------------------------------------


class PagedApi:
    """Answers /observations from a list of ids, as the API does with id_above."""

    def __init__(self, ids: list[int], per_page: int = 200, total: bool = True) -> None:
        self.ids, self.per_page, self.total = ids, per_page, total
        self.asked: list[int] = []

    def get(self, path: str, params: dict[str, Any]) -> JSON:
        assert path == "observations" and "page" not in params
        assert (params["order_by"], params["order"], params["per_page"]) == ("id", "asc", 200)
        self.asked.append(params["id_above"])
        above = [i for i in self.ids if i > params["id_above"]]
        answer: JSON = {"results": [{"id": i} for i in above[: self.per_page]]}
        if self.total:
            answer["total_results"] = len(above)
        return answer


@pytest.mark.parametrize(("count", "requests"), [(0, 1), (1, 1), (199, 1), (200, 1), (201, 2), (450, 3)])
def test_the_walk_pages_by_id_above_and_asks_no_page_too_many(count: int, requests: int) -> None:
    api = PagedApi(list(range(3, 3 + 2 * count, 2)))
    pages = list(observation_pages(api, {"taxon_id": 1}, 0))  # type: ignore[arg-type]
    assert [o["id"] for page in pages for o in page] == api.ids
    assert len(api.asked) == requests
    assert api.asked == [0, *[page[-1]["id"] for page in pages][: requests - 1]]


def test_without_a_total_the_walk_stops_at_a_short_page() -> None:
    api = PagedApi(list(range(1, 401)), total=False)
    pages = list(observation_pages(api, {}, 0))  # type: ignore[arg-type]
    assert [len(page) for page in pages] == [200, 200] and api.asked == [0, 200, 400]
    api = PagedApi(list(range(1, 251)), total=False)
    assert [len(page) for page in observation_pages(api, {}, 100)] == [150]  # type: ignore[arg-type]
    assert api.asked == [100]


def test_the_walk_drops_observations_without_a_usable_id() -> None:
    class Odd:
        def get(self, path: str, params: dict[str, Any]) -> JSON:
            return {"total_results": 4, "results": [{"id": "5"}, None, {"id": 6}, {"id": True}]}

    assert list(observation_pages(Odd(), {}, 0)) == [[{"id": 6}]]  # type: ignore[arg-type]


@pytest.mark.parametrize("results", [None, "text", {"id": 5}, 7])
def test_a_page_whose_results_are_not_a_list_ends_the_walk(results: Any) -> None:
    class Odd:
        def get(self, path: str, params: dict[str, Any]) -> JSON:
            return {"total_results": 1, "results": results}

    assert list(observation_pages(Odd(), {}, 0)) == []  # type: ignore[arg-type]


# Folder names, URLs, sizes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("Xanthium strumarium", "Xanthium_strumarium"),  # only dots, spaces and _ are trimmed
        ("a" * 119 + " b", "a" * 119),  # cut at 120 bytes, then trimmed again
        ("a" + "é" * 100, "a" + "é" * 59),  # never half a character
        ("._ Lythrum ._", "Lythrum"),
        ("Salix alba X", "Salix_alba_X"),
    ],
)
def test_folder_names_are_trimmed_and_cut_cleanly(name: str, folder: str) -> None:
    assert safe_folder_name(name, "7") == folder


def test_plain_http_photo_urls_are_sized_too() -> None:
    assert sized_url("http://127.0.0.1:8000/photos/1/square.jpg", "small") == (
        "http://127.0.0.1:8000/photos/1/small.jpg"
    )


@pytest.mark.parametrize(
    ("url", "extension"),
    [
        ("https://h/photos/1/square.v2.JPG", "jpg"),
        ("https://h/photos/1/jpg", None),
        ("https://h/photos/1/square.gif?x.png", "gif"),
    ],
)
def test_the_extension_is_the_last_one_of_the_last_segment(url: str, extension: str | None) -> None:
    assert photo_extension(url) == extension


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (999_500, "999.5 kB"),
        (1_500_000, "1.5 MB"),
        (5_000_000_000, "5.0 GB"),
        (2_500_000_000_000, "2.5 TB"),
    ],
)
def test_format_size(num_bytes: int, text: str) -> None:
    assert format_size(num_bytes) == text


def test_parse_size_takes_one_byte_and_explains_the_units() -> None:
    assert parse_size("1B") == 1
    with pytest.raises(ValueError) as refused:
        parse_size("5 gigs")
    assert str(refused.value) == (
        "'5 gigs' is not a size; write it like 500MB, 5GB or 1.5GiB "
        "(kB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024)"
    )


# The budget's windows ----------------------------------------------------------------------


def test_bytes_that_exactly_fit_are_admitted_when_the_oldest_age_out(tmp_path: Path) -> None:
    """1000 bytes an hour: 600 at 0 s and 400 at 600 s; 600 more fit exactly once the
    first 600 are an hour old, and 601 only once the 400 are too."""
    clock = FakeClock()
    budget = ByteBudget(Store(tmp_path / "state.sqlite", clock), clock, 1000, 10_000, wait=False)
    start = clock.now()
    for num_bytes, gap in ((600, 600), (400, 0)):
        ticket = budget.try_admit(num_bytes)
        assert isinstance(ticket, Ticket)
        budget.settle(ticket, num_bytes)
        clock.advance(gap)
    assert budget.try_admit(600) == (start + 3600, "hourly")
    assert budget.try_admit(601) == (start + 600 + 3600, "hourly")
    clock.advance(3000)  # exactly an hour after the first 600
    assert budget.spent("hourly") == 400
    assert isinstance(budget.try_admit(600), Ticket)


def test_the_session_keeps_honouring_proxy_settings_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment is read once per host (for speed), but still per host: NO_PROXY
    exempts a host, a proxy applies to the others, and a call's own proxies still win."""
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    session = build_session()
    for _ in range(2):  # the second time from what was kept
        direct = session.merge_environment_settings(
            "http://127.0.0.1:9/photos/1/small.jpg", {}, None, None, None
        )
        proxied = session.merge_environment_settings(
            "http://example.org/photos/1/small.jpg", {}, None, None, None
        )
        assert "http" not in direct["proxies"]
        assert proxied["proxies"]["http"] == "http://proxy.invalid:3128"
    own = session.merge_environment_settings(
        "http://example.org/x", {"http": "http://other:1"}, None, None, None
    )
    assert own["proxies"]["http"] == "http://other:1"


def test_recording_a_photo_done_never_waits_for_the_state(tmp_path: Path) -> None:
    """While another thread holds the state file (a commit, a page of the listing), the
    workers' outcomes are taken at once, a batch's worth included; the batch is committed
    once the state is free, none lost."""
    store = Store(tmp_path / "state.sqlite", FakeClock())
    photos = range(1, COMMIT_EVERY_PHOTOS + 1)
    rows = [
        PhotoRecord(
            photo_id=i,
            observation_id=i,
            taxon_id=7,
            taxon_name="Aus bus",
            observed_taxon_id=7,
            observed_taxon_name="Aus bus",
            size="medium",
            path=f"photos/Aus_bus/{i}_medium.jpg",
            url=f"http://host/photos/{i}/medium.jpg",
            license_code="cc-by",
            attribution="(c) someone",
            observer="someone",
            quality_grade="research",
            latitude=None,
            longitude=None,
            observed_on=None,
            observation_url=f"https://www.inaturalist.org/observations/{i}",
            observation_uuid=None,
            positional_accuracy=None,
            coordinates_obscured=None,
            query="query",
        )
        for i in photos
    ]
    store.record_page([], rows)
    holding, release = threading.Event(), threading.Event()

    def hold_the_state() -> None:
        with store.transaction():
            holding.set()
            release.wait(30)

    def record_all() -> None:
        for row in rows:
            store.record(Outcome(PhotoJob(row.photo_id, row.size, row.url, row.path, 7), DONE, 100))

    holder = threading.Thread(target=hold_the_state)
    holder.start()
    assert holding.wait(10)
    recorder = threading.Thread(target=record_all)
    recorder.start()
    recorder.join(timeout=10)
    waited = recorder.is_alive()
    release.set()
    holder.join()
    recorder.join()
    assert not waited, "a worker waited for another thread's use of the state"
    store.flush()
    done = store.db.execute("SELECT COUNT(*) FROM photos WHERE status=?", (DONE,)).fetchone()[0]
    assert done == len(photos)
    store.close()
