"""Observation pages and the photos in them: which to download, which to skip and why."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inatdl.client import JSON, ApiClient
from inatdl.constants import API_LICENSES, OBSERVATIONS_PER_PAGE, QUALITY_GRADES
from inatdl.jsonvalues import as_dict, as_id, as_int, as_list, as_number, as_text, results_of
from inatdl.naming import is_placeholder, photo_extension, sized_url

log = logging.getLogger("inatdl")

SKIP_LICENCE, SKIP_PLACEHOLDER, SKIP_URL = "licence", "placeholder", "unusable URL"


@dataclass(frozen=True)
class Filters:
    """What the user asked for; the API gets all of it, and licences are checked again."""

    licenses: tuple[str, ...]
    quality: tuple[str, ...] = QUALITY_GRADES
    place_id: int | None = None
    bbox: tuple[float, float, float, float] | None = None
    observed_from: str | None = None
    observed_to: str | None = None

    def params(self, taxon_ids: Sequence[int]) -> dict[str, Any]:
        """The /observations query for these taxa (paging parameters aside)."""
        params: dict[str, Any] = {
            "taxon_id": ",".join(str(taxon_id) for taxon_id in taxon_ids),
            "photos": "true",
        }
        sent = [code for code in self.licenses if code in API_LICENSES]  # the API knows no pd
        if sent:
            params["photo_license"] = ",".join(sent)
        if set(self.quality) != set(QUALITY_GRADES):
            params["quality_grade"] = ",".join(self.quality)
        if self.place_id is not None:
            params["place_id"] = self.place_id
        if self.bbox is not None:
            params.update(zip(("swlat", "swlng", "nelat", "nelng"), self.bbox, strict=True))
        if self.observed_from:
            params["d1"] = self.observed_from
        if self.observed_to:
            params["d2"] = self.observed_to
        return params

    def key(self, taxon_id: int, size: str) -> str:
        """Names a paging cursor: the same taxon, size and filters continue the same walk."""
        params = self.params([taxon_id])
        # The licences the API is sent: pd (checked per photo, rare on the API) is left out so
        # that the walks of data dirs made before pd was a default go on where they stood.
        params["photo_license"] = ",".join(sorted(c for c in self.licenses if c in API_LICENSES))
        if "quality_grade" in params:
            params["quality_grade"] = ",".join(sorted(self.quality))
        return "&".join(f"{k}={params[k]}" for k in sorted(params)) + f"&size={size}"


def observation_pages(
    client: ApiClient,
    params: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
    after_id: int,
    on_remaining: Callable[[int], None] | None = None,
) -> Iterator[list[JSON]]:
    """Pages of observations with ids above ``after_id``, in id order, streamed.

    Pages by ``id_above`` (never ``page``, which the API refuses past 10,000 results) and
    stops without a wasted request when nothing remains: the answer's ``total_results``
    counts the observations above the cursor, so a page holding that many is the last (a
    page shorter than asked is not, from a server that pages smaller); without a total, a
    page shorter than the answer's ``per_page`` is the last. ``params`` may
    be a function asked before each page, so the caller can narrow the query between pages
    (a taxon that reached its cap is dropped, and the walk goes on from where it is).
    ``on_remaining`` hears, after each page asked, how many observations are left.
    """
    last_id = after_id
    while True:
        query = {
            **(params() if callable(params) else params),
            "order_by": "id",
            "order": "asc",
            "per_page": OBSERVATIONS_PER_PAGE,
            "id_above": last_id,
        }
        data = client.get("observations", query)
        listed = results_of(data)
        results = [o for o in listed if isinstance(o, dict) and as_id(o.get("id"))]
        total = as_int(data.get("total_results"))
        # a page is the last by what the API sent, not by what is kept of it
        if total is not None:
            done = total <= len(listed)
        else:
            done = len(listed) < min(
                as_id(data.get("per_page")) or OBSERVATIONS_PER_PAGE, OBSERVATIONS_PER_PAGE
            )
        if on_remaining is not None:
            left = total - len(listed) if total is not None else OBSERVATIONS_PER_PAGE
            on_remaining(0 if done else left)
        if not results:
            return
        yield results
        last_id = max(int(o["id"]) for o in results)
        if done:
            return


@dataclass
class PhotoChoice:
    """One photo of an observation: the row to record, or why it is skipped."""

    photo_id: int
    skip: str = ""
    url: str = ""
    extension: str = ""
    license_code: str = ""
    attribution: str = ""


def observation_photos(observation: JSON) -> list[JSON]:
    """The photo dicts of an observation, from ``photos`` or ``observation_photos``."""
    photos = as_list(observation.get("photos"))
    if not photos:
        photos = [
            op.get("photo") for op in as_list(observation.get("observation_photos")) if isinstance(op, dict)
        ]
    seen: set[int] = set()
    unique = []
    for photo in photos:
        if isinstance(photo, dict) and as_id(photo.get("id")) and photo["id"] not in seen:
            seen.add(photo["id"])
            unique.append(photo)
    return unique


def choose_photo(photo: JSON, licenses: Sequence[str], size: str) -> PhotoChoice:
    """Download or skip one photo, by its own licence (the API filter is per observation)."""
    photo_id = int(photo["id"])
    license_code = (as_text(photo.get("license_code")) or "").lower()
    if not license_code or license_code not in licenses:
        return PhotoChoice(photo_id, skip=SKIP_LICENCE)
    url = as_text(photo.get("url")) or ""
    if is_placeholder(url):
        return PhotoChoice(photo_id, skip=SKIP_PLACEHOLDER)
    wanted = sized_url(url, size)
    extension = photo_extension(url) if wanted else None
    if wanted is None or extension is None:
        return PhotoChoice(photo_id, skip=SKIP_URL)
    return PhotoChoice(
        photo_id,
        url=wanted,
        extension=extension,
        license_code=license_code,
        attribution=as_text(photo.get("attribution")) or "",
    )


def coordinates(observation: JSON) -> tuple[float | None, float | None]:
    """(latitude, longitude) from geojson, else from the "lat,lng" location string."""
    try:
        lng, lat = observation["geojson"]["coordinates"][:2]
        return float(lat), float(lng)
    except (KeyError, TypeError, ValueError):
        pass
    try:
        lat, lng = str(observation["location"]).split(",")
        return float(lat), float(lng)
    except (KeyError, ValueError):
        return None, None


def lineage(observation: JSON) -> list[int]:
    """The observation's taxon and its ancestors, root first (``taxon.ancestor_ids``, which
    ends with the taxon's own id); just the taxon when the API leaves the ancestors out."""
    taxon = observation.get("taxon")
    if not isinstance(taxon, dict):
        return []
    ancestors = [a for a in as_list(taxon.get("ancestor_ids")) if as_id(a)]
    own = as_id(taxon.get("id"))
    if own and (not ancestors or ancestors[-1] != own):
        ancestors.append(own)
    return ancestors


def observation_fields(observation: JSON) -> dict[str, Any]:
    """The manifest fields an observation gives to each of its photos, each of its type or None."""
    taxon = as_dict(observation.get("taxon"))
    user = as_dict(observation.get("user"))
    latitude, longitude = coordinates(observation)
    obs_id = int(observation["id"])
    return {
        "observation_id": obs_id,
        "observed_taxon_id": as_id(taxon.get("id")),
        "observed_taxon_name": as_text(taxon.get("name")),
        "observer": as_text(user.get("login")),
        "quality_grade": as_text(observation.get("quality_grade")),
        "latitude": latitude,
        "longitude": longitude,
        "observed_on": as_text(observation.get("observed_on")),
        "observation_url": as_text(observation.get("uri"))
        or f"https://www.inaturalist.org/observations/{obs_id}",
        "observation_uuid": as_text(observation.get("uuid")),
        "positional_accuracy": _metres(observation.get("public_positional_accuracy")),
        "coordinates_obscured": coordinates_obscured(observation),
    }


#: Geoprivacy values under which iNaturalist blurs (obscured) or hides (private) the public
#: coordinates, whether the observer chose them or the taxon is threatened.
_HIDDEN = ("obscured", "private")


def coordinates_obscured(observation: JSON) -> bool | None:
    """Whether the public coordinates are blurred: true when the API says ``obscured`` or a
    geoprivacy (the observer's or the taxon's) hides them, false when it says they are not,
    None when the answer says neither (an older or partial answer)."""
    hidden = (observation.get("geoprivacy"), observation.get("taxon_geoprivacy"))
    if observation.get("obscured") is True or any(value in _HIDDEN for value in hidden):
        return True
    return False if observation.get("obscured") is False else None


def _metres(value: Any) -> int | None:
    """A distance in whole metres: a finite number the API gave (not a bool), rounded."""
    number = as_number(value)
    if number is None or not 0 <= number < float("inf"):
        return None
    return round(number)
