"""An observation of the API as a Darwin Core record: pure, no I/O.

Darwin Core is the vocabulary GBIF, rgbif/spocc and every biodiversity database read, so
`records fetch` writes its terms as columns. Each term is filled the way iNaturalist's own
Darwin Core archive fills it (its ``lib/darwin_core/occurrence.rb``): the observation's
taxon, the public coordinates and their public accuracy, the observer's name (the login
when the name is empty), and the licence as a Creative Commons URL in the form GBIF writes.
"""

from __future__ import annotations

from typing import Any

from inatdl.client import JSON
from inatdl.jsonvalues import as_dict, as_id, as_number, as_text
from inatdl.naming import is_placeholder, sized_url
from inatdl.observations import coordinates, observation_photos

COLUMNS = (
    "occurrenceID", "catalogNumber", "basisOfRecord", "scientificName", "taxonID", "taxonRank",
    "vernacularName", "eventDate", "decimalLatitude", "decimalLongitude",
    "coordinateUncertaintyInMeters", "informationWithheld", "recordedBy",
    "identificationVerificationStatus", "license", "rightsHolder", "associatedMedia",
)  # fmt: skip
INTEGER_COLUMNS = ("catalogNumber", "taxonID", "coordinateUncertaintyInMeters")
FLOAT_COLUMNS = ("decimalLatitude", "decimalLongitude")

BASIS_OF_RECORD = "HumanObservation"
MEDIA_SEPARATOR = " | "  # Darwin Core's recommended separator for a list in one term
MEDIA_SIZE = "original"  # associatedMedia links each photo at its largest size

# GBIF's own licence URLs (org.gbif.api.vocabulary.License: CC0 1.0, CC BY 4.0, CC BY-NC 4.0);
# the other Creative Commons licences iNaturalist offers, in the same form.
_CREATIVE_COMMONS = "http://creativecommons.org"
LICENSE_URLS = {
    "cc0": f"{_CREATIVE_COMMONS}/publicdomain/zero/1.0/legalcode",
    "pd": f"{_CREATIVE_COMMONS}/publicdomain/mark/1.0/",
    **{
        code: f"{_CREATIVE_COMMONS}/licenses/{code.removeprefix('cc-')}/4.0/legalcode"
        for code in ("cc-by", "cc-by-nc", "cc-by-sa", "cc-by-nd", "cc-by-nc-sa", "cc-by-nc-nd")
    },
}

Record = dict[str, Any]


def darwin_core_record(observation: JSON) -> Record:
    """The Darwin Core terms of one observation, by column name (None where unknown)."""
    obs_id = int(observation["id"])
    taxon = as_dict(observation.get("taxon"))
    user = as_dict(observation.get("user"))
    latitude, longitude = coordinates(observation)
    person = _text(user.get("name")) or _text(user.get("login"))
    return {
        "occurrenceID": _text(observation.get("uri")) or f"https://www.inaturalist.org/observations/{obs_id}",
        "catalogNumber": obs_id,
        "basisOfRecord": BASIS_OF_RECORD,
        "scientificName": _text(taxon.get("name")),
        "taxonID": as_id(taxon.get("id")),
        "taxonRank": _text(taxon.get("rank")),
        "vernacularName": _text(taxon.get("preferred_common_name")),
        "eventDate": _text(observation.get("time_observed_at")) or _text(observation.get("observed_on")),
        "decimalLatitude": latitude,
        "decimalLongitude": longitude,
        "coordinateUncertaintyInMeters": _accuracy(observation.get("public_positional_accuracy")),
        "informationWithheld": information_withheld(observation),
        "recordedBy": person,
        "identificationVerificationStatus": _text(observation.get("quality_grade")),
        "license": license_url(observation.get("license_code")),
        "rightsHolder": person,
        "associatedMedia": associated_media(observation),
    }


def license_url(code: Any) -> str | None:
    """The licence's Creative Commons URL as GBIF writes it; None when all rights are reserved
    (no code); a code without a known URL as it is, as iNaturalist's own archive does."""
    text = _text(code)
    if not text:
        return None
    return LICENSE_URLS.get(text.lower(), text)


def information_withheld(observation: JSON) -> str | None:
    """Why the public coordinates are not the observer's, in iNaturalist's own words; None
    when they are (not obscured, no geoprivacy)."""
    geoprivacy = (_text(observation.get("geoprivacy")) or "").lower()
    if geoprivacy == "private":
        return "Coordinates hidden at the request of the observer"
    if geoprivacy != "obscured" and observation.get("obscured") is not True:
        return None
    accuracy = _accuracy(observation.get("public_positional_accuracy"))
    increased = "Coordinate uncertainty increased" + (f" to {accuracy}m" if accuracy is not None else "")
    if geoprivacy == "obscured":
        return f"{increased} at the request of the observer"
    return f"{increased} to protect threatened taxon"


def associated_media(observation: JSON) -> str | None:
    """The observation's photos at their largest size, in the order the observer gave them;
    placeholders of flagged photos are not the photo and are left out."""
    urls = []
    for photo in observation_photos(observation):
        url = _text(photo.get("url"))
        if url and not is_placeholder(url):
            urls.append(sized_url(url, MEDIA_SIZE) or url)
    return MEDIA_SEPARATOR.join(urls) or None


def _accuracy(value: Any) -> int | None:
    """Metres as a whole number; the API gives an int, or null when unknown."""
    number = as_number(value)
    return None if number is None or number < 0 else round(number)


def _text(value: Any) -> str | None:
    """A string with something in it: an empty name or date is no name or date."""
    text = as_text(value)
    return text if text and text.strip() else None
