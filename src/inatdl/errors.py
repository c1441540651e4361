"""The library's own errors; the CLI turns each into one line and an exit code."""

from __future__ import annotations

from datetime import datetime


class InatdlError(Exception):
    """Anything the user can act on; the message says what is wrong and what to do."""

    exit_code = 1


class SpeciesFileError(InatdlError):
    """The species CSV cannot be used."""


class ApiError(InatdlError):
    """The API did not give a usable answer after every retry."""


class StateError(InatdlError):
    """The data dir or its state store cannot be used."""


class DataDirBusy(StateError):
    """Another inatdl process holds the data dir."""


class NoTaxaError(InatdlError):
    """photos fetch was run before taxa resolve produced any taxon."""


class UnknownTaxonError(InatdlError):
    """A taxon named in an option (``--within``) is not on iNaturalist."""


class NothingObservedError(InatdlError):
    """`taxa observed` found no taxon under its filter, or `records fetch` no observation."""


class DiskError(InatdlError):
    """Writing to the data dir failed (full disk, no permission)."""


class ExportError(InatdlError):
    """`dataset export` cannot be done with this data dir, output folder or options."""


class OpenDataError(InatdlError):
    """The open data cannot be downloaded, read or queried (a missing table, a corrupt file,
    no synced dump)."""


class ExportOptionError(ExportError):
    """An option of `dataset export` that cannot work with these photos (a usage error)."""

    exit_code = 2


class LimitReached(InatdlError):
    """A byte limit is reached and the user asked not to wait."""

    exit_code = 75

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


class LimitTooSmall(InatdlError):
    """A byte limit smaller than one photo of the size asked: no wait can make it fit."""

    exit_code = 75
