"""Observation pages and the photos in them: which to download, which to skip and why."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inatdl.client import JSON, ApiClient
from inatdl.constants import OBSERVATIONS_PER_PAGE, QUALITY_GRADES
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
            "photo_license": ",".join(self.licenses),
        }
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
        params["photo_license"] = ",".join(sorted(self.licenses))
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
    stops without a wasted request when a page is short or nothing remains. ``params`` may
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
        listed = data.get("results")
        listed = listed if isinstance(listed, list) else []
        results = [o for o in listed if isinstance(o, dict) and _int(o.get("id"))]
        total = data.get("total_results")
        # a page is short by what the API sent, not by what is kept of it
        done = len(listed) < OBSERVATIONS_PER_PAGE or (isinstance(total, int) and total <= len(listed))
        if on_remaining is not None:
            left = total - len(listed) if isinstance(total, int) else OBSERVATIONS_PER_PAGE
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


def _int(value: Any) -> int | None:
    """An id as the API should give it: a positive int (not a bool, a string or a float)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def observation_photos(observation: JSON) -> list[JSON]:
    """The photo dicts of an observation, from ``photos`` or ``observation_photos``."""
    photos = _list(observation.get("photos"))
    if not photos:
        photos = [
            op.get("photo") for op in _list(observation.get("observation_photos")) if isinstance(op, dict)
        ]
    seen: set[int] = set()
    unique = []
    for photo in photos:
        if isinstance(photo, dict) and _int(photo.get("id")) and photo["id"] not in seen:
            seen.add(photo["id"])
            unique.append(photo)
    return unique


def choose_photo(photo: JSON, licenses: Sequence[str], size: str) -> PhotoChoice:
    """Download or skip one photo, by its own licence (the API filter is per observation)."""
    photo_id = int(photo["id"])
    license_code = (_text(photo.get("license_code")) or "").lower()
    if not license_code or license_code not in licenses:
        return PhotoChoice(photo_id, skip=SKIP_LICENCE)
    url = _text(photo.get("url")) or ""
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
        attribution=_text(photo.get("attribution")) or "",
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
    ancestors = [a for a in _list(taxon.get("ancestor_ids")) if _int(a)]
    own = _int(taxon.get("id"))
    if own and (not ancestors or ancestors[-1] != own):
        ancestors.append(own)
    return ancestors


def observation_fields(observation: JSON) -> dict[str, Any]:
    """The manifest fields an observation gives to each of its photos, each of its type or None."""
    taxon = _dict(observation.get("taxon"))
    user = _dict(observation.get("user"))
    latitude, longitude = coordinates(observation)
    obs_id = int(observation["id"])
    return {
        "observation_id": obs_id,
        "observed_taxon_id": _int(taxon.get("id")),
        "observed_taxon_name": _text(taxon.get("name")),
        "observer": _text(user.get("login")),
        "quality_grade": _text(observation.get("quality_grade")),
        "latitude": latitude,
        "longitude": longitude,
        "observed_on": _text(observation.get("observed_on")),
        "observation_url": _text(observation.get("uri"))
        or f"https://www.inaturalist.org/observations/{obs_id}",
        "observation_uuid": _text(observation.get("uuid")),
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
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        return None
    return round(value)
