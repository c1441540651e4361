"""Pure functions on names and URLs: matching, safe folder names, photo size URLs."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

from inatdl.constants import IMAGE_EXTENSIONS, PHOTO_SIZES

_SPACES = re.compile(r"\s+")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_WINDOWS_RESERVED = {
    "CON", "PRN", "AUX", "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}  # fmt: skip
MAX_FOLDER_BYTES = 120
_SIZE_WORD = re.compile(r"^(" + "|".join(PHOTO_SIZES) + r")\.([A-Za-z0-9]+)$")


def normalise_name(name: str) -> str:
    """The key a name is matched on: case folded, runs of white space made one space."""
    return _SPACES.sub(" ", name).strip().casefold()


def safe_folder_name(name: str, fallback: str) -> str:
    """A folder name that is valid and stays inside its parent on every file system.

    Spaces become underscores (``Lythrum salicaria`` → ``Lythrum_salicaria``); path
    separators, control and reserved characters become ``_``; ``.``/``..`` and Windows
    device names are prefixed; the result is cut to a length every file system accepts.
    ``fallback`` (such as the taxon id) is used when nothing usable remains.
    """
    text = unicodedata.normalize("NFC", name)
    text = _UNSAFE.sub("_", text)
    text = _SPACES.sub("_", text).strip("._ ")
    encoded = text.encode("utf-8")[:MAX_FOLDER_BYTES]
    text = encoded.decode("utf-8", errors="ignore").rstrip("._ ")
    if not text:
        return fallback
    if text.split(".")[0].upper() in _WINDOWS_RESERVED:
        text = f"_{text}"
    return text


#: Where the API's stand-in images live: ``/assets/`` for a flagged photo (such as
#: ``copyright-infringement-square.png``), ``/attachment_defaults/`` for a photo without a
#: file (``local_photos/square.png``, iNaturalistAPI's observation_preload.js).
PLACEHOLDER_FOLDERS = ("/assets/", "/attachment_defaults/")


def is_placeholder(url: str) -> bool:
    """True for the images the API hands out instead of a photo: never the photographer's."""
    path = urlsplit(url).path
    return any(folder in path for folder in PLACEHOLDER_FOLDERS)


def sized_url(url: str, size: str) -> str | None:
    """The URL of ``size``, changing only the size word of the last path segment.

    ``.../photos/123/square.jpg?1598551272`` → ``.../photos/123/medium.jpg?1598551272``.
    None when the URL does not end in ``<size word>.<extension>``.
    """
    parts = urlsplit(url)
    head, _, last = parts.path.rpartition("/")
    match = _SIZE_WORD.match(last)
    if match is None or parts.scheme not in ("http", "https"):
        return None
    path = f"{head}/{size}.{match.group(2)}"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def photo_extension(url: str) -> str | None:
    """The file extension for a photo URL, from the allow-list only (jpeg stays jpeg)."""
    last = urlsplit(url).path.rpartition("/")[2]
    ext = last.rpartition(".")[2].lower() if "." in last else ""
    return ext if ext in IMAGE_EXTENSIONS else None
