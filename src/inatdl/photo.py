"""The photo record: one photo at one size as listed, and the columns it becomes.

Its fields are the columns the state stores for a listed photo, photos.csv's columns and
the columns an export carries, in photos.csv's order, so that a new column is one new
field here (and one step in migrations.MIGRATIONS). Records are built by keyword only: with
twenty fields, a positional call that swaps two of the same type would be silent.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from typing import Any

# A field's role, in its metadata (a field without any: a photos.csv column since the first
# release, that an export carries when present but can do without).
#: A column an export cannot do without: it names, places or credits the photo.
_EXPORT_NEEDS = {"export_needs": True}
#: A column added by state version 2 (an older data dir's photos.csv lacks it).
_SINCE_2 = {"since": 2}
#: The state's bookkeeping, not a photos.csv column.
_STATE_ONLY = {"state_only": True}


@dataclass(frozen=True, kw_only=True)
class PhotoRecord:
    """A photo at one size as a source listed it, before its download."""

    photo_id: int = field(metadata=_EXPORT_NEEDS)
    observation_id: int | None = field(metadata=_EXPORT_NEEDS)  # None: the open-data route has none
    taxon_id: int  # the listed taxon, whose folder holds the file
    taxon_name: str = field(metadata=_EXPORT_NEEDS)
    observed_taxon_id: int | None  # the observation's own, maybe a descendant
    observed_taxon_name: str | None
    size: str = field(metadata=_EXPORT_NEEDS)
    path: str = field(metadata=_EXPORT_NEEDS)  # relative to the data dir
    url: str
    license_code: str = field(metadata=_EXPORT_NEEDS)
    attribution: str = field(metadata=_EXPORT_NEEDS)
    observer: str | None = field(metadata=_EXPORT_NEEDS)
    quality_grade: str | None
    latitude: float | None
    longitude: float | None
    observed_on: str | None
    observation_url: str = field(metadata=_EXPORT_NEEDS)
    observation_uuid: str | None = field(metadata=_SINCE_2)
    positional_accuracy: int | None = field(metadata=_SINCE_2)  # metres, the public accuracy; None: unknown
    coordinates_obscured: bool | None = field(metadata=_SINCE_2)  # None: the source does not say
    # The walk that listed it (its filters and size): the state's bookkeeping.
    query: str = field(metadata=_STATE_ONLY)


def _names(chosen: list[Field[Any]]) -> tuple[str, ...]:
    return tuple(f.name for f in chosen)


_FIELDS: list[Field[Any]] = list(fields(PhotoRecord))
#: The state's photos columns a listed photo is inserted with.
STATE_COLUMNS = _names(_FIELDS)
_SHOWN = [f for f in _FIELDS if "state_only" not in f.metadata]
#: photos.csv's columns, in order: the record's, with the downloaded ``bytes`` after the
#: first release's; columns added since are appended, so older readers' positions hold.
MANIFEST_COLUMNS = (
    *_names([f for f in _SHOWN if f.metadata.get("since", 1) == 1]),
    "bytes",
    *_names([f for f in _SHOWN if f.metadata.get("since", 1) > 1]),
)
#: Columns photos.csv gained after the first release: an older data dir's lacks them.
ADDED_COLUMNS = _names([f for f in _SHOWN if f.metadata.get("since", 1) > 1])
#: The photos.csv columns an export cannot do without; it carries the others when present.
EXPORT_COLUMNS = _names([f for f in _SHOWN if "export_needs" in f.metadata])
