"""A local imitation of api.inaturalist.org v1 and its two photo hosts, for inatdl's tests.

Why: the real service is slow, rate limited, and cannot be made to fail on demand. This
server answers in the same JSON shape (copied from recorded real responses), serves
deterministic photo bytes, records every request, and injects faults (errors, resets,
truncated bodies, throttling, slow bodies...) at run time so the client's retry,
resume and licence logic can be tested quickly and repeatably.

Two HTTP servers share one state:

* the "static" host (like ``static.inaturalist.org`` plus the API): ``/v1/...``,
  ``/photos/...`` and ``/assets/...``;
* the "open" host (like ``inaturalist-open-data.s3.amazonaws.com``): ``/photos/...``.

Everything is generated in code; nothing is read from disk. Stdlib only.

Usage::

    with InatServer() as inat:
        inat.add_taxon(1, "Plantae", rank="kingdom")
        inat.add_taxon(2, "Lythrum salicaria", parent_id=1, common_name="Purple Loosestrife")
        inat.add_observation(10, 2, photos=[{"id": 100, "license_code": "cc0"}])
        inat.add_fault(Fault("status", target="photo", status=503, first_attempts=1))
        ...  # point the client at inat.api_url
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http
import io
import json
import re
import socket
import struct
import sys
import threading
import time
import traceback
import zlib
from bisect import bisect_left, bisect_right
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "ENDLESS_LIMIT",
    "FAULT_KINDS",
    "FAULT_TARGETS",
    "OBSCURED_ACCURACY",
    "OPEN_DATA_COLUMNS",
    "OPEN_DATA_PREFIX",
    "OPEN_DATA_TABLES",
    "PHOTO_BASE_BYTES",
    "PHOTO_SIZES",
    "NO_FILE_PATH",
    "PLACEHOLDER_PATH",
    "WINDOW_ERROR",
    "Fault",
    "InatServer",
    "RecordedRequest",
    "attribution",
    "gzip_bytes",
    "http_date",
    "photo_pixels",
]

# --------------------------------------------------------------------------- constants

#: The public positional accuracy (metres) of obscured coordinates: iNaturalist blurs them
#: to a cell of 0.2 by 0.2 degrees, about 27.8 km across the diagonal at the equator.
OBSCURED_ACCURACY = 27_800
PHOTO_SIZES = ("square", "thumb", "small", "medium", "large", "original")
#: Approximate body length of each size; each photo varies by up to +1/8 of it.
PHOTO_BASE_BYTES = {
    "square": 2_048,
    "thumb": 3_072,
    "small": 6_144,
    "medium": 12_288,
    "large": 25_600,
    "original": 51_200,
}
_PIXELS = {"square": 75, "thumb": 100, "small": 240, "medium": 500, "large": 1024, "original": 2048}
CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
}
RESULT_WINDOW = 10_000
MAX_PER_PAGE = 200
#: /observations/species_counts pages up to 500 leaf taxa, and gives 500 when not asked.
SPECIES_COUNTS_MAX_PER_PAGE = 500
#: /taxa/{ids} answers 422 "Too many IDs" past this many ids.
TAXA_IDS_MAX = 30
SPECIES_LEVEL = 10
DEFAULT_PER_PAGE = 30
WINDOW_ERROR = (
    "Result window is too large, page * per_page must be less than or equal to 10000. "
    "Use a sliding window approach with id_above or id_below"
)
#: Where flagged photos point instead of the photo (path on the static host).
PLACEHOLDER_PATH = "/assets/copyright-infringement-square.png"
#: Where a photo without a file points (iNaturalistAPI's observation_preload.js gives
#: ``<website>attachment_defaults/local_photos/square.png`` when a photo has no prefix).
NO_FILE_PATH = "/attachment_defaults/local_photos/square.png"
#: "endless" bodies stop after this many bytes even if the client keeps reading.
ENDLESS_LIMIT = 1 << 30
#: Offset between a photo id and its observation_photo id, so the two never get confused.
OBSERVATION_PHOTO_ID_OFFSET = 1_000_000_000
_TIMESTAMP_BASE = 1_500_000_000
#: Where the open host serves the open data (iNaturalist's monthly dump of the same world):
#: ``<prefix>/<table>.csv.gz`` and ``<prefix>/photos/<photo_id>/<size>.<ext>`` (every photo
#: in the dump, whichever host the API names). See InatServer.open_data_url.
OPEN_DATA_PREFIX = "/open-data"
OPEN_DATA_TABLES = ("taxa", "observations", "photos", "observers")
#: The dump's columns, in the order iNaturalist writes them.
OPEN_DATA_COLUMNS = {
    "taxa": ("taxon_id", "ancestry", "rank_level", "rank", "name", "active"),
    "observations": (
        "observation_uuid", "observer_id", "latitude", "longitude", "positional_accuracy",
        "taxon_id", "quality_grade", "observed_on", "anomaly_score",
    ),
    "photos": (
        "photo_uuid", "photo_id", "observation_uuid", "observer_id", "extension", "license",
        "width", "height", "position",
    ),
    "observers": ("observer_id", "login", "name"),
}  # fmt: skip
#: Last-Modified of the dump's tables (2026-11-27 UTC) until a test sets another.
OPEN_DATA_MODIFIED = 1_795_737_600

FAULT_TARGETS = frozenset({"api", "taxa", "observations", "photo", "any"})
FAULT_KINDS = frozenset(
    {
        "status",
        "reset",
        "reset_mid_body",
        "short",
        "html",
        "badjson",
        "empty",
        "latency",
        "drip",
        "no_length",
        "endless",
        "redirect",
        "throttle",
    }
)

RANK_LEVELS = {
    "stateofmatter": 100,
    "kingdom": 70,
    "subkingdom": 67,
    "phylum": 60,
    "subphylum": 57,
    "superclass": 53,
    "class": 50,
    "subclass": 47,
    "infraclass": 45,
    "superorder": 43,
    "order": 40,
    "suborder": 37,
    "infraorder": 35,
    "superfamily": 33,
    "epifamily": 32,
    "family": 30,
    "subfamily": 27,
    "supertribe": 26,
    "tribe": 25,
    "subtribe": 24,
    "genus": 20,
    "genushybrid": 20,
    "subgenus": 15,
    "section": 13,
    "subsection": 12,
    "complex": 11,
    "species": 10,
    "hybrid": 10,
    "subspecies": 5,
    "variety": 5,
    "form": 5,
    "infrahybrid": 5,
}
_ICONIC_NAMES = frozenset(
    {
        "Animalia",
        "Plantae",
        "Fungi",
        "Protozoa",
        "Chromista",
        "Aves",
        "Amphibia",
        "Reptilia",
        "Mammalia",
        "Actinopterygii",
        "Mollusca",
        "Arachnida",
        "Insecta",
    }
)
#: Fault kinds that mangle the normal answer rather than replace it.
_NEEDS_NORMAL = frozenset({"latency", "drip", "short", "reset_mid_body", "no_length"})
_PHOTO_KEYS = frozenset({"id", "license_code", "host", "ext", "flagged", "gone", "content_type", "no_file"})
_BULK_KEYS = frozenset(
    {"observed_on", "latitude", "longitude", "place_ids", "user_login", "padding", "license_code", "flagged"}
)
_FILTER_KEYS = (
    "taxon_id",
    "id",
    "photos",
    "photo_license",
    "license",
    "quality_grade",
    "place_id",
    "swlat",
    "swlng",
    "nelat",
    "nelng",
    "d1",
    "d2",
)
_PHOTO_RE = re.compile(r"/photos/(\d+)/([A-Za-z]+)\.([A-Za-z0-9]+)")
_TAXA_IDS_RE = re.compile(r"/v1/taxa/(\d+(?:,\d+)*)")
_WORD_RE = re.compile(r"\w+")
_FILLER = "Filler text to make observation pages heavy, as long descriptions do. " * 16


# --------------------------------------------------------------------------- public records


@dataclass
class RecordedRequest:
    """One request as the server saw it, so tests can assert what the client asked for."""

    method: str
    host: str  # "static" or "open"
    path: str  # without the query string
    query: dict[str, str]  # single values; a repeated key keeps its last value
    headers: dict[str, str]  # as sent (original case); see header() for a lookup
    status: int  # status sent; 0 when the connection was reset without a response
    fault: str | None = None  # e.g. "status:503", "reset", "throttle"; None if served normally
    target: str = ""  # raw request target: path plus "?query" as sent
    time: float = 0.0  # time.monotonic() when the answer started (after any latency)
    sent: int = 0  # body bytes written to the socket so far (read or not by the client)

    def header(self, name: str, default: str | None = None) -> str | None:
        """Case-insensitive header lookup."""
        lower = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lower:
                return value
        return default


@dataclass(eq=False)
class Fault:
    """A misbehaviour to inject; see the module docstring of the kinds below.

    kind: "status" (send ``status``), "reset" (RST, no response), "reset_mid_body" (headers and
    half the body, then RST), "short" (full Content-Length, half the body, then FIN), "html"
    (200 text/html error page), "badjson" (200 application/json, truncated), "empty" (200 with
    Content-Length 0), "latency" (sleep ``delay`` then answer normally), "drip" (body in
    ``chunk_size`` pieces, ``delay`` seconds apart), "no_length" (no Content-Length, body ends
    at connection close), "endless" (200 image/jpeg with no length and no end, up to
    ENDLESS_LIMIT), "redirect" (302 to ``location``), "throttle" (429; made by
    ``InatServer.throttle``).

    Selection: ``target`` ("api" = /v1, "taxa", "observations", "photo" = /photos/ on either
    host, "any"), ``host`` ("static"/"open"/None), ``path_contains`` (substring of the raw
    path+query). ``rate`` picks that fraction of distinct URLs (path+query) by a hash with
    ``seed``; ``first_attempts`` limits it to the first N requests of each URL (counted from
    when the fault was added); ``times`` caps the total number of requests it is applied to.
    ``hits`` counts how many requests it was applied to.
    """

    kind: str
    target: str = "any"
    path_contains: str | None = None
    host: str | None = None
    status: int = 503
    retry_after: str | None = None  # Retry-After value: seconds ("5") or an HTTP date
    delay: float = 0.5  # seconds, for "latency" and "drip"
    chunk_size: int = 64  # bytes per piece, for "drip"
    hold_after: int | None = None  # "drip": after this many bytes, hold the rest until stopped
    #: "drip" with ``hold_after``: once set, the held bytes go on, all but the last piece,
    #: held until the server stops: the body is in flight until its reader stops reading
    release: threading.Event | None = None
    location: str | None = None  # for "redirect"
    body: str | None = None  # overrides the body of "status"/"throttle"/"html"; of "redirect" too
    times: int | None = None
    first_attempts: int | None = None
    rate: float = 1.0
    seed: int = 0
    after: int = 0  # "throttle": requests let through before throttling starts
    every: int = 1  # "throttle": throttle every N-th request after that
    #: "short", "reset_mid_body": called once the cut body is sent, before its connection
    #: ends, so the client cannot ask again before it has run (a photo changed in between)
    then: Callable[[], None] | None = None
    hits: int = field(default=0, init=False)
    _seen: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _matched: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(FAULT_KINDS)}")
        if self.target not in FAULT_TARGETS:
            raise ValueError(f"unknown target {self.target!r}; one of {sorted(FAULT_TARGETS)}")
        if self.host not in (None, "static", "open"):
            raise ValueError("host must be 'static', 'open' or None")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        if self.kind == "redirect" and not self.location:
            raise ValueError("a redirect fault needs a location")
        if self.every < 1 or self.chunk_size < 1:
            raise ValueError("every and chunk_size must be >= 1")
        if self.retry_after is not None:
            self.retry_after = str(self.retry_after)

    @property
    def name(self) -> str:
        """The label recorded on affected requests, e.g. "status:503"."""
        return f"status:{self.status}" if self.kind == "status" else self.kind

    def selects(self, url: str) -> bool:
        """Whether ``rate`` picks this raw path+query; deterministic for a given seed."""
        if self.rate >= 1.0:
            return True
        if self.rate <= 0.0:
            return False
        digest = hashlib.sha256(f"{self.seed}|{url}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64 < self.rate

    def matches(self, host: str, path: str, url: str) -> bool:
        """Whether a request falls under target/host/path_contains (before rate and counts)."""
        if self.host is not None and self.host != host:
            return False
        if self.path_contains is not None and self.path_contains not in url:
            return False
        is_api = path == "/v1" or path.startswith("/v1/")
        if self.target == "api":
            return is_api
        if self.target == "taxa":
            return path == "/v1/taxa" or path.startswith("/v1/taxa/")
        if self.target == "observations":
            return path == "/v1/observations" or path.startswith("/v1/observations/")
        if self.target == "photo":
            return path.startswith(("/photos/", OPEN_DATA_PREFIX + "/photos/"))
        return True


def attribution(login: str, license_code: str | None) -> str:
    """The attribution string the real API writes for a photo."""
    if license_code is None:
        return f"(c) {login}, all rights reserved"
    if license_code.lower() == "cc0":
        return f"(c) {login}, no rights reserved (CC0)"
    label = license_code.upper().replace("CC-", "CC ", 1)
    return f"(c) {login}, some rights reserved ({label})"


def http_date(seconds_from_now: float) -> str:
    """An HTTP date, for a Retry-After given as a date rather than seconds."""
    return formatdate(time.time() + seconds_from_now, usegmt=True)


# --------------------------------------------------------------------------- internal records


class _Photo(NamedTuple):
    id: int
    license_code: str | None
    host: str
    ext: str
    flagged: bool
    gone: int | None
    content_type: str | None
    no_file: bool = False  # the API gives its "no file" default image instead


class _Obs(NamedTuple):
    id: int
    taxon_id: int
    quality_grade: str
    observed_on: str
    latitude: float
    longitude: float
    place_ids: tuple[int, ...]
    user_login: str
    padding: int
    license_code: str | None
    photos: tuple[_Photo, ...]
    coordinates: str = "both"  # which of geojson and location the JSON gives: "both", "geojson",
    # "location" or "none" (an observation without a place)


class _Privacy(NamedTuple):
    """An observation's coordinate privacy (InatServer.set_coordinates_privacy)."""

    accuracy: int | None = None
    geoprivacy: str | None = None
    taxon_geoprivacy: str | None = None
    omit: tuple[str, ...] = ()


@dataclass
class _Taxon:
    id: int
    name: str
    rank: str
    parent_id: int | None
    is_active: bool
    observations_count: int | None
    common_name: str | None
    synonyms: list[int] | None
    ancestor_ids: tuple[int, ...]  # root first, itself last (as the API gives them)
    name_words: tuple[str, ...]
    common_words: tuple[str, ...]


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


class _BadRequest(Exception):
    pass


def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD_RE.findall(text.casefold()))


def _prefix_match(query_words: Sequence[str], words: Sequence[str]) -> bool:
    return all(any(w.startswith(q) for w in words) for q in query_words)


def _csv(value: str | None) -> list[str]:
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def _csv_ints(value: str | None, name: str) -> list[int] | None:
    if value is None or value.strip() == "":
        return None
    try:
        return [int(part) for part in _csv(value)]
    except ValueError:
        raise _BadRequest(f"{name} must be an integer or a comma list of integers") from None


def _int_param(query: dict[str, str], name: str, default: int | None) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise _BadRequest(f"{name} must be an integer") from None


def _float_param(query: dict[str, str], name: str) -> float | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise _BadRequest(f"{name} must be a number") from None


def _uuid(text: str) -> str:
    h = hashlib.md5(text.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def _json_response(status: int, payload: Any) -> _Response:
    return _Response(status, _json_bytes(payload), "application/json; charset=utf-8")


def _json_error(status: int, message: str) -> _Response:
    return _json_response(status, {"error": message, "status": status})


def _html_response(status: int, text: str) -> _Response:
    body = (
        f"<!DOCTYPE html>\n<html><head><title>{status} {text}</title></head>"
        f"<body><h1>{status} {text}</h1></body></html>\n"
    ).encode()
    return _Response(status, body, "text/html; charset=utf-8")


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _png_header(width: int, height: int) -> bytes:
    """The signature and IHDR of an 8-bit greyscale PNG."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)


_PNG_END = _png_chunk(b"IEND", b"")
#: A real 1x1 grey PNG, served for /assets/*.png.
PLACEHOLDER_PNG = (
    b"\x89PNG\r\n\x1a\n"
    + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    + _png_chunk(b"IDAT", zlib.compress(b"\x00\x80"))
    + _PNG_END
)
_JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
_JPEG_END = b"\xff\xd9"


def _magic(ext: str, size: str) -> tuple[bytes, bytes]:
    """Leading and trailing bytes of a WebP photo: the one format served undecodable."""
    return b"RIFF\x00\x00\x00\x00WEBPVP8 ", b""


# Real images: a uniform grey picture of the announced pixel size, built by hand (no Pillow
# in the server) and padded to the announced byte length with a comment the decoders skip.
#: The least padding each format can hold: an empty JPEG COM segment, a PNG tEXt chunk
#: "Comment" with no text, a GIF comment extension with one byte.
_MIN_PAD = {"jpg": 4, "jpeg": 4, "png": 20, "gif": 5}


def _jpeg_image(width: int, height: int) -> tuple[bytes, bytes]:
    """A baseline greyscale JPEG whose every 8x8 block is mid-grey: Huffman tables of one
    1-bit code each (DC difference 0, end of block), so a block costs two zero bits."""
    dqt = b"\xff\xdb\x00\x43\x00" + b"\x01" * 64
    sof = b"\xff\xc0\x00\x0b\x08" + struct.pack(">HH", height, width) + b"\x01\x01\x11\x00"
    one_code = b"\x01" + b"\x00" * 15 + b"\x00"  # one code of length 1, for symbol 0
    dht = b"\xff\xc4\x00\x14\x00" + one_code + b"\xff\xc4\x00\x14\x10" + one_code
    sos = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
    bits = 2 * ((width + 7) // 8) * ((height + 7) // 8)
    scan = b"\x00" * (bits // 8) + (bytes([(1 << (8 - bits % 8)) - 1]) if bits % 8 else b"")
    return _JPEG_HEAD, dqt + sof + dht + sos + scan + _JPEG_END


def _jpeg_pad(count: int, text: bytes) -> bytes:
    """COM segments of exactly ``count`` bytes (at least 4), each at most 65,537."""
    segments = -(-count // 65_537)
    room = count - 4 * segments
    parts = []
    for i in range(segments):
        size = room // segments + (1 if i < room % segments else 0)
        parts.append(b"\xff\xfe" + struct.pack(">H", size + 2) + text[:size])
        text = text[size:]
    return b"".join(parts)


def _png_image(width: int, height: int) -> tuple[bytes, bytes]:
    """An 8-bit greyscale PNG, all black."""
    idat = _png_chunk(b"IDAT", zlib.compress(b"\x00" * ((width + 1) * height), 9))
    return _png_header(width, height), idat + _PNG_END


def _png_pad(count: int, text: bytes) -> bytes:
    """A tEXt chunk "Comment" of exactly ``count`` bytes (at least 20)."""
    return _png_chunk(b"tEXt", b"Comment\x00" + text[: count - 20])


def _gif_image(width: int, height: int) -> tuple[bytes, bytes]:
    """A GIF89a of one colour, its LZW codes worked out for a run of equal pixels."""
    screen = b"GIF89a" + struct.pack("<HH", width, height) + b"\x91\x00\x00"
    palette = b"\x80\x80\x80" + b"\x00" * 9
    data = _gif_solid_lzw(width * height)
    blocks = b"".join(bytes([len(data[i : i + 255])]) + data[i : i + 255] for i in range(0, len(data), 255))
    descriptor = b"\x2c" + struct.pack("<HHHH", 0, 0, width, height) + b"\x00"
    return screen + palette, descriptor + b"\x02" + blocks + b"\x00\x3b"


def _gif_solid_lzw(pixels: int) -> bytes:
    """LZW codes (minimum code size 2) for ``pixels`` pixels of colour 0.

    After a clear code, the n-th code stands for n+1 pixels (code 0, then 6, 7, ... each
    the entry the decoder is about to add) and is ``max(3, (5 + n).bit_length())`` bits
    wide; a clear every 4,000 codes keeps the table below its 4,096 entries."""
    clear, end, group = 4, 5, 4000
    codes: list[tuple[int, int]] = [(clear, 3)]
    n = 0
    while pixels > 0:
        if n == group:
            codes.append((clear, (5 + n).bit_length()))
            n = 0
        run = min(n + 1, pixels)
        codes.append((0 if run == 1 else 4 + run, max(3, (5 + n).bit_length())))
        pixels -= run
        n += 1
    codes.append((end, max(3, (5 + n).bit_length())))
    acc = nbits = 0
    out = bytearray()
    for code, width in codes:
        acc |= code << nbits
        nbits += width
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def _gif_pad(count: int, text: bytes) -> bytes:
    """A comment extension of exactly ``count`` bytes (at least 5)."""
    inner = count - 3  # sub-block length bytes and text
    blocks = -(-inner // 256)
    text = text[: inner - blocks]
    sizes = [len(text) // blocks + (1 if i < len(text) % blocks else 0) for i in range(blocks)]
    parts, at = [], 0
    for size in sizes:
        parts.append(bytes([size]) + text[at : at + size])
        at += size
    return b"\x21\xfe" + b"".join(parts) + b"\x00"


_IMAGE_BUILDERS = {"jpg": _jpeg_image, "jpeg": _jpeg_image, "png": _png_image, "gif": _gif_image}
_PADDERS = {"jpg": _jpeg_pad, "jpeg": _jpeg_pad, "png": _png_pad, "gif": _gif_pad}


@functools.lru_cache(maxsize=256)
def _image_template(ext: str, width: int, height: int) -> tuple[bytes, bytes]:
    """The image's bytes before and after its padding, cached: tests serve tens of thousands."""
    return _IMAGE_BUILDERS[ext](width, height)


def photo_pixels(photo_id: int, size: str) -> tuple[int, int]:
    """Width and height of a photo at ``size``: square is 75 x 75, the others the original
    dimensions scaled so the long side is the size's pixels (never enlarged)."""
    px = _PIXELS.get(size, 75)
    if size == "square" or size not in _PIXELS:
        return px, px
    width, height = _dimensions(photo_id)
    long_side = max(width, height)
    if long_side <= px:
        return width, height
    return max(1, round(width * px / long_side)), max(1, round(height * px / long_side))


def _dimensions(photo_id: int) -> tuple[int, int]:
    """original_dimensions: mostly 2048 on the long side, some square, like real photos."""
    shape = photo_id % 3
    if shape == 0:
        return 1188, 1188
    if shape == 1:
        return 2048, 1365
    return 1536, 2048


def _timestamp(photo_id: int) -> int:
    return _TIMESTAMP_BASE + (photo_id * 7919) % 100_000_000


def _filler(photo_id: int, size: str, count: int) -> bytes:
    """``count`` printable bytes that differ from photo to photo and size to size."""
    seed = hashlib.sha256(f"{photo_id}:{size}".encode()).digest()
    block = b"".join(hashlib.sha256(seed + bytes([i])).hexdigest().encode() for i in range(16))
    return (block * (count // len(block) + 1))[:count]


# --------------------------------------------------------------------------- HTTP plumbing


def _drip_waited(fault: Fault, start: int, length: int, stopping: threading.Event) -> bool:
    """Wait before a drip's piece at ``start`` of a body of ``length``: ``delay``, or held
    (see ``Fault.hold_after`` and ``Fault.release``); False if the server stops meanwhile."""
    if fault.hold_after is None or start < fault.hold_after:
        return not stopping.wait(fault.delay)
    if fault.release is None or start + fault.chunk_size >= length:
        return not stopping.wait(None)  # held until the server stops
    while not fault.release.is_set():
        if stopping.wait(0.01):
            return False
    return not stopping.wait(fault.delay)


class _HostServer(ThreadingHTTPServer):
    """One of the two hosts; the shared state lives in ``inat``."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # many client threads connect at once; 5 would cause SYN retries

    def __init__(self, inat: InatServer, host_name: str) -> None:
        self.inat = inat
        self.host_name = host_name
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # the client went away; that is its business
            return
        self.inat._note_error(traceback.format_exc())


class _CountingWriter(io.BufferedIOBase):
    """The handler's wfile: sends straight to the socket and reports each byte count the
    kernel took, so what is counted is what was sent, whether the client reads it or not."""

    def __init__(self, sock: socket.socket, on_sent: Callable[[int], None]) -> None:
        self._sock = sock
        self._on_sent = on_sent

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        with memoryview(data) as view, view.cast("B") as octets:
            done = 0
            while done < len(octets):
                sent = self._sock.send(octets[done:])
                self._on_sent(sent)
                done += sent
        return done

    def fileno(self) -> int:
        return self._sock.fileno()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HostServer
    _answer: RecordedRequest | None = None  # the request whose body is being written
    _in_body = False

    # -- connection bookkeeping (so stop() can unblock keep-alive threads)

    def setup(self) -> None:
        super().setup()
        self.wfile = _CountingWriter(self.connection, self._count_sent)
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.inat._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.inat._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: tests would drown in access logs."""

    def end_headers(self) -> None:
        super().end_headers()
        self._in_body = True

    def _count_sent(self, num_bytes: int) -> None:
        if self._in_body and self._answer is not None:
            self._answer.sent += num_bytes

    # -- methods

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _not_allowed(self) -> None:
        self._serve(head=False, allowed=False)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    # -- the request

    def _serve(self, head: bool, allowed: bool = True) -> None:
        inat = self.server.inat
        host = self.server.host_name
        url = self.path
        split = urlsplit(url)
        path = split.path or "/"
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = dict(self.headers.items())
        self._answer, self._in_body = None, False
        if inat.latency > 0:
            time.sleep(inat.latency)
        if inat.on_request is not None:
            inat.on_request(host, path, query)
        fault = inat._choose_fault(host, path, url) if allowed else None

        def record(status: int) -> None:
            self._answer = RecordedRequest(
                method=self.command,
                host=host,
                path=path,
                query=query,
                headers=headers,
                status=status,
                fault=fault.name if fault else None,
                target=url,
                time=inat.clock(),
            )
            inat._record(self._answer)

        try:
            resp = _json_error(405, "Method not allowed")
            resp.headers.append(("Connection", "close"))  # its request body was never read
            if allowed and (fault is None or fault.kind in _NEEDS_NORMAL):
                resp = inat._route(host, path, query)
                if path.startswith("/photos/"):
                    resp = inat._ranged(resp, self.headers)
                elif path.startswith(OPEN_DATA_PREFIX + "/"):
                    resp = inat._ranged(inat._open_data_conditional(resp, self.headers), self.headers)
            if fault is None:
                record(resp.status)
                self._send(resp, head)
                return
            kind = fault.kind
            if kind == "reset":
                record(0)
                self._reset()
            elif kind in ("status", "throttle"):
                resp = self._fault_status(fault, path)
                record(resp.status)
                self._send(resp, head)
            elif kind == "html":
                text = fault.body or (
                    "<!DOCTYPE html><html><head><title>iNaturalist is down for maintenance"
                    "</title></head><body><h1>We'll be back soon</h1>"
                    "<p>Sorry, something went wrong.</p></body></html>"
                )
                resp = _Response(200, text.encode(), "text/html; charset=utf-8")
                record(200)
                self._send(resp, head)
            elif kind == "badjson":
                normal = inat._route(host, path, query)
                if (normal.content_type or "").startswith("application/json") and len(normal.body) > 4:
                    body = normal.body[: len(normal.body) // 2]
                else:
                    body = b'{"total_results": 1, "page": 1, "per_page": 30, "results": [{"id": '
                record(200)
                self._send(_Response(200, body, "application/json; charset=utf-8"), head)
            elif kind == "empty":
                normal = inat._route(host, path, query)
                record(200)
                self._send(_Response(200, b"", normal.content_type or "application/json"), head)
            elif kind == "redirect":
                page = (fault.body or "").encode()  # what a real host often sends: a short page
                location = [("Location", fault.location or "/")]
                resp = _Response(302, page, "text/html" if page else None, location)
                record(302)
                self._send(resp, head)
            elif kind == "endless":
                record(200)
                self._endless(head)
            elif kind == "latency":
                time.sleep(fault.delay)
                record(resp.status)
                self._send(resp, head)
            elif kind == "no_length":
                record(resp.status)
                self._head(resp, length=False, close=True)
                if not head:
                    self.wfile.write(resp.body)
            elif kind == "drip":
                record(resp.status)
                self._head(resp)
                if not head:
                    self._drip(resp.body, fault)
            elif kind in ("short", "reset_mid_body"):
                record(resp.status)
                self._head(resp)
                if not head:
                    self.wfile.write(resp.body[: len(resp.body) // 2])
                    self.wfile.flush()
                if fault.then is not None:
                    fault.then()
                if kind == "short":
                    self.close_connection = True
                else:
                    self._reset()
        except OSError:
            self.close_connection = True  # the client hung up mid-answer

    # -- writers

    def _head(self, resp: _Response, length: bool = True, close: bool = False) -> None:
        self.send_response(resp.status)
        if resp.content_type:
            self.send_header("Content-Type", resp.content_type)
        for key, value in resp.headers:
            self.send_header(key, value)
        if length:
            self.send_header("Content-Length", str(len(resp.body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()

    def _send(self, resp: _Response, head: bool) -> None:
        self._head(resp)
        if not head and resp.body:
            self.wfile.write(resp.body)

    def _reset(self) -> None:
        """Close with SO_LINGER 0 so the kernel sends RST: the client sees a connection reset."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The socket really closes (and the RST goes out) once finish() has closed the file
        # objects made from it; the server's later shutdown(SHUT_WR) then fails harmlessly.
        self.connection.close()

    def _drip(self, body: bytes, fault: Fault) -> None:
        stopping = self.server.inat._stopping
        for start in range(0, len(body), fault.chunk_size):
            if start and not _drip_waited(fault, start, len(body), stopping):
                self.close_connection = True
                return
            self.wfile.write(body[start : start + fault.chunk_size])

    def _endless(self, head: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Connection", "close")
        self.end_headers()
        if head:
            return
        self.wfile.write(_JPEG_HEAD)
        block = hashlib.sha256(b"endless").digest() * 2048  # 64 KiB
        sent = len(_JPEG_HEAD)
        stopping = self.server.inat._stopping
        while sent < ENDLESS_LIMIT and not stopping.is_set():
            self.wfile.write(block)
            sent += len(block)

    def _fault_status(self, fault: Fault, path: str) -> _Response:
        status = 429 if fault.kind == "throttle" else fault.status
        headers = [("Retry-After", fault.retry_after)] if fault.retry_after is not None else []
        if fault.body is not None:
            ctype = "text/html; charset=utf-8"
            if fault.body.lstrip().startswith(("{", "[")):
                ctype = "application/json; charset=utf-8"
            return _Response(status, fault.body.encode(), ctype, headers)
        if path == "/v1" or path.startswith("/v1/"):
            resp = _json_error(status, _reason(status))
        else:
            resp = _html_response(status, _reason(status))
        resp.headers = headers
        return resp


# --------------------------------------------------------------------------- the server


class InatServer:
    """A fake iNaturalist: API plus static and open-data photo hosts, with faults.

    Photo ids from :meth:`add_observations` default to ``observation_id * 10 + k`` for the
    k-th photo (k < 10) of each observation; pass ``first_photo_id`` to number them
    consecutively instead. Photo ids are unique across the whole server.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._taxa: dict[int, _Taxon] = {}
        self._obs: dict[int, _Obs] = {}
        self._photos: dict[int, _Photo] = {}
        self._obs_counts: dict[int, int] = {}
        self._version = 0
        self._sorted_version = -1
        self._sorted_ids: list[int] = []
        self._sorted_obs: list[_Obs] = []
        self._query_cache: OrderedDict[tuple[Any, ...], tuple[list[int], list[_Obs]]] = OrderedDict()
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._errors: list[str] = []
        self._servers: dict[str, _HostServer] = {}
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._connections_opened = 0
        self._stopping = threading.Event()
        #: Seconds to sleep before answering any request.
        self.latency: float = 0.0
        #: Exact body length per size word (e.g. {"medium": 5_000_000}) for budget tests.
        self.photo_size_bytes: dict[str, int] = {}
        #: Exact body length of single photos (any size), over photo_size_bytes.
        self.photo_lengths: dict[int, int] = {}
        #: Whether the photo hosts honour Range (206); False answers every GET with 200.
        self.ranges: bool = True
        #: What RecordedRequest.time reads (a benchmark on a fake clock replaces it).
        self.clock: Callable[[], float] = time.monotonic
        #: Called with (host, path, query) before each answer, in the request's thread: a test
        #: can hold a request there until another has arrived, to check order without timing.
        self.on_request: Callable[[str, str, dict[str, str]], None] | None = None
        #: Lineages shown for taxa moved upstream whose observations are not re-indexed yet.
        self._shown_lineage: dict[int, tuple[int, ...]] = {}
        #: The open data's table bodies a test put in place of the generated ones (raw bytes,
        #: e.g. a truncated gzip; None answers 404), by table name ("photos").
        self.open_data_files: dict[str, bytes | None] = {}
        #: Last-Modified of the open data's tables (seconds since the epoch).
        self.open_data_modified: float = OPEN_DATA_MODIFIED
        self._open_data_cache: dict[str, tuple[int, bytes]] = {}
        #: The most leaves a species_counts page holds, whatever per_page asks (the real
        #: API's 500; a test sets less to play a server that pages smaller than asked).
        self.species_counts_max_per_page: int = SPECIES_COUNTS_MAX_PER_PAGE
        #: The most observations an /observations page holds, whatever per_page asks (the
        #: real API's 200; a test sets less to play a server that pages smaller than asked).
        self.observations_max_per_page: int = MAX_PER_PAGE
        #: Names of a taxon besides its name and common name: (name, locale), "sci" for
        #: another scientific name (such as a nominate trinomial), as the API's ``names``.
        self._other_names: dict[int, list[tuple[str, str]]] = {}
        #: Coordinate privacy set by set_coordinates_privacy, by observation id.
        self._privacy: dict[int, _Privacy] = {}
        #: Fields of single observations set by set_observation_details, over the defaults.
        self._details: dict[int, dict[str, Any]] = {}

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> InatServer:
        """Bind both hosts on 127.0.0.1 (free ports) and serve them in daemon threads."""
        if self._servers:
            raise RuntimeError("already started")
        self._stopping.clear()
        for name in ("static", "open"):
            srv = _HostServer(self, name)
            self._servers[name] = srv
            thread = threading.Thread(
                target=srv.serve_forever,
                kwargs={"poll_interval": 0.02},
                name=f"inat-{name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and cut every open connection, so no handler thread lingers."""
        self._stopping.set()
        for srv in self._servers.values():
            srv.shutdown()
            srv.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> InatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _base(self, host: str) -> str:
        srv = self._servers.get(host)
        port = srv.server_address[1] if srv else 0
        return f"http://127.0.0.1:{port}"

    @property
    def static_url(self) -> str:
        """Base of the static host (API, /photos/, /assets/), no trailing slash."""
        self._require_started()
        return self._base("static")

    @property
    def open_url(self) -> str:
        """Base of the open-data photo host, no trailing slash."""
        self._require_started()
        return self._base("open")

    @property
    def api_url(self) -> str:
        """The API base, like https://api.inaturalist.org/v1."""
        return self.static_url + "/v1"

    def _require_started(self) -> None:
        if not self._servers:
            raise RuntimeError("InatServer is not started")

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted so far (both hosts): lets tests check keep-alive."""
        with self._lock:
            return self._connections_opened

    @property
    def errors(self) -> list[str]:
        """Tracebacks of bugs inside the server itself (should stay empty)."""
        with self._lock:
            return list(self._errors)

    def _note_error(self, text: str) -> None:
        with self._lock:
            self._errors.append(text)

    def _track(self, conn: socket.socket, opened: bool) -> None:
        with self._lock:
            if opened:
                self._connections.add(conn)
                self._connections_opened += 1
            else:
                self._connections.discard(conn)

    # ----------------------------------------------------------------- recorded requests

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request answered so far, in order."""
        with self._lock:
            return list(self._requests)

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(req)

    def requests_to(self, prefix: str, host: str | None = None) -> list[RecordedRequest]:
        """Requests whose path starts with ``prefix`` (optionally on one host)."""
        return [r for r in self.requests if r.path.startswith(prefix) and (host is None or r.host == host)]

    def photo_requests(self) -> list[RecordedRequest]:
        """Requests under /photos/ on either host."""
        return self.requests_to("/photos/")

    def api_requests(self) -> list[RecordedRequest]:
        """Requests under /v1/."""
        return self.requests_to("/v1/")

    def bytes_sent(self, prefix: str = "/photos/") -> int:
        """Body bytes the hosts wrote to their sockets for GETs under ``prefix``."""
        return sum(r.sent for r in self.requests_to(prefix))

    def sent_in_full(self) -> Counter[str]:
        """How many times each photo (path) was sent whole, by a 200 from its first byte."""
        whole: Counter[str] = Counter()
        for r in self.photo_requests():
            m = _PHOTO_RE.fullmatch(r.path)
            if m and r.status == 200 and r.sent == len(self.photo_bytes(int(m.group(1)), m.group(2))):
                whole[r.path] += 1
        return whole

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # ----------------------------------------------------------------- faults

    def add_fault(self, fault: Fault) -> Fault:
        """Start injecting ``fault`` (checked in the order added; the first that applies wins)."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove_fault(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear_faults(self) -> None:
        """Remove every fault, throttles included."""
        with self._lock:
            self._faults.clear()

    def throttle(
        self, after: int, every: int = 3, retry_after: str | None = "1", target: str = "api"
    ) -> Fault:
        """Let ``after`` matching requests through, then answer 429 to the next one and to
        every ``every``-th one after it (requests numbered after+1, after+1+every, ...).
        Every matching request is counted, including the throttled ones.
        """
        return self.add_fault(
            Fault("throttle", target=target, status=429, retry_after=retry_after, after=after, every=every)
        )

    def _choose_fault(self, host: str, path: str, url: str) -> Fault | None:
        """Update every matching fault's counters, return the first that applies."""
        chosen: Fault | None = None
        with self._lock:
            for fault in self._faults:
                if not fault.matches(host, path, url):
                    continue
                if fault.kind == "throttle":
                    fault._matched += 1
                    k = fault._matched - fault.after
                    applies = k >= 1 and (k - 1) % fault.every == 0
                else:
                    if not fault.selects(url):
                        continue
                    seen = fault._seen.get(url, 0) + 1
                    fault._seen[url] = seen
                    applies = fault.first_attempts is None or seen <= fault.first_attempts
                if applies and fault.times is not None and fault.hits >= fault.times:
                    applies = False
                if applies and chosen is None:
                    chosen = fault
                    fault.hits += 1
        return chosen

    # ----------------------------------------------------------------- data: taxa

    def add_taxon(
        self,
        id: int,  # the API's own field name
        name: str,
        *,
        rank: str = "species",
        parent_id: int | None = None,
        is_active: bool = True,
        observations_count: int | None = None,
        common_name: str | None = None,
        current_synonymous_taxon_ids: list[int] | None = None,
    ) -> dict[str, Any]:
        """Add a taxon (its parent must exist already); returns its /v1/taxa JSON.

        observations_count None means "count the observations of it and its descendants".
        """
        with self._lock:
            if id in self._taxa:
                raise ValueError(f"taxon {id} already exists")
            if parent_id is not None:
                if parent_id not in self._taxa:
                    raise ValueError(f"parent taxon {parent_id} must be added before {id}")
                ancestors = self._taxa[parent_id].ancestor_ids + (id,)
            else:
                ancestors = (id,)
            self._taxa[id] = _Taxon(
                id=id,
                name=name,
                rank=rank,
                parent_id=parent_id,
                is_active=is_active,
                observations_count=observations_count,
                common_name=common_name,
                synonyms=list(current_synonymous_taxon_ids)
                if current_synonymous_taxon_ids is not None
                else None,
                ancestor_ids=ancestors,
                name_words=_words(name),
                common_words=_words(common_name or ""),
            )
            self._version += 1
            return self._taxon_json(self._taxa[id])

    def add_taxon_name(self, taxon_id: int, name: str, locale: str = "sci") -> None:
        """Give a taxon another name: searches for it find the taxon with that name as its
        ``matched_term``, and ``all_names=true`` lists it under ``names`` with its locale
        ("sci" for a scientific name, as iNaturalist's search index has it)."""
        with self._lock:
            self._other_names.setdefault(taxon_id, []).append((name, locale))
            self._version += 1

    def _other_name_matched(self, t: _Taxon, q_words: Sequence[str], exactly: bool = False) -> str | None:
        """The first other name of ``t`` that the search words match, as matched_term; with
        ``exactly``, only one that is the search words (the API highlights the best match)."""
        for name, _ in self._other_names.get(t.id, []):
            words = _words(name)
            if q_words and (tuple(q_words) == words if exactly else _prefix_match(q_words, words)):
                return name
        return None

    def _all_names(self, t: _Taxon) -> list[dict[str, Any]]:
        """The taxon's ``names`` as ``all_names=true`` gives them (scientific name first)."""
        names = [(t.name, "sci")]
        if t.common_name:
            names.append((t.common_name, "en"))
        names += self._other_names.get(t.id, [])
        return [
            {"name": name, "locale": locale, "is_valid": True, "position": position}
            for position, (name, locale) in enumerate(names)
        ]

    def taxon(self, taxon_id: int) -> dict[str, Any]:
        """The taxon's JSON as the API would give it now."""
        with self._lock:
            return self._taxon_json(self._taxa[taxon_id])

    def move_taxon_unindexed(self, taxon_id: int, ancestor_ids: Sequence[int]) -> None:
        """Show a taxon under other ancestors (root first, itself last), as after a taxon
        change on iNaturalist before its observations are re-indexed: their JSON names the
        new lineage, while ``taxon_id`` searches still find them by the old one."""
        with self._lock:
            self._shown_lineage[taxon_id] = tuple(ancestor_ids)
            self._version += 1

    def _taxon_json(self, t: _Taxon) -> dict[str, Any]:
        lineage = self._shown_lineage.get(t.id, t.ancestor_ids)
        iconic: _Taxon | None = None
        for ancestor_id in lineage:
            ancestor = self._taxa.get(ancestor_id)
            if ancestor is not None and ancestor.name in _ICONIC_NAMES:
                iconic = ancestor
        count = t.observations_count
        if count is None:
            count = self._obs_counts.get(t.id, 0)
        result: dict[str, Any] = {
            "id": t.id,
            "name": t.name,
            "rank": t.rank,
            "rank_level": RANK_LEVELS.get(t.rank, 10),
            "is_active": t.is_active,
            "parent_id": t.parent_id,
            "ancestry": "/".join(str(a) for a in lineage[:-1]) or None,
            "ancestor_ids": list(lineage),
            "observations_count": count,
            "current_synonymous_taxon_ids": list(t.synonyms) if t.synonyms is not None else None,
            "iconic_taxon_id": iconic.id if iconic else None,
            "iconic_taxon_name": iconic.name if iconic else None,
            "default_photo": None,
            "extinct": False,
            "wikipedia_url": None,
            "atlas_id": None,
            "complete_species_count": None,
            "taxon_changes_count": 0,
            "taxon_schemes_count": 0,
            "flag_counts": {"resolved": 0, "unresolved": 0},
            "vision": True,
        }
        if t.common_name is not None:  # the real API leaves the key out when there is none
            result["preferred_common_name"] = t.common_name
        return result

    # ----------------------------------------------------------------- data: observations

    def add_observation(
        self,
        id: int,  # the API's own field name
        taxon_id: int,
        *,
        photos: list[dict[str, Any]] | None = None,
        quality_grade: str = "research",
        observed_on: str = "2020-08-27",
        latitude: float = 50.09,
        longitude: float = -104.71,
        place_ids: Iterable[int] = (),
        user_login: str = "samroom",
        padding: int = 0,
        license_code: Any = ...,
        coordinates: str = "both",
    ) -> dict[str, Any]:
        """Add one observation; returns its JSON.

        Each photo dict: ``id`` (required), ``license_code`` (default "cc-by", None = all
        rights reserved), ``host`` ("static"/"open"), ``ext`` ("jpg"...), ``flagged`` (the API
        then gives the placeholder URL), ``no_file`` (a photo without a file: the API gives
        its default image, NO_FILE_PATH), ``gone`` (404/410 from the photo host), and
        ``content_type`` (override). ``license_code`` is the observation's own licence;
        by default the first photo's (None without photos). ``coordinates`` says where the
        JSON gives the place: "both" (geojson and location), "geojson", "location" or "none";
        ``observed_on=""`` gives an observation without a date.
        """
        if coordinates not in ("both", "geojson", "location", "none"):
            raise ValueError("coordinates must be 'both', 'geojson', 'location' or 'none'")
        built = []
        for spec in photos or []:
            unknown = set(spec) - _PHOTO_KEYS
            if unknown:
                raise ValueError(f"unknown photo keys {sorted(unknown)}")
            if "id" not in spec:
                raise ValueError("every photo needs an id")
            host = spec.get("host", "static")
            if host not in ("static", "open"):
                raise ValueError("photo host must be 'static' or 'open'")
            gone = spec.get("gone")
            if gone not in (None, 404, 410):
                raise ValueError("gone must be 404, 410 or None")
            built.append(
                _Photo(
                    id=int(spec["id"]),
                    license_code=spec.get("license_code", "cc-by"),
                    host=host,
                    ext=spec.get("ext", "jpg"),
                    flagged=bool(spec.get("flagged", False)),
                    gone=gone,
                    content_type=spec.get("content_type"),
                    no_file=bool(spec.get("no_file", False)),
                )
            )
        if license_code is ...:
            license_code = built[0].license_code if built else None
        obs = _Obs(
            id=id,
            taxon_id=taxon_id,
            quality_grade=quality_grade,
            observed_on=observed_on,
            latitude=float(latitude),
            longitude=float(longitude),
            place_ids=tuple(place_ids),
            user_login=user_login,
            padding=padding,
            license_code=license_code,
            photos=tuple(built),
            coordinates=coordinates,
        )
        with self._lock:
            self._insert([obs])
            return self._obs_json(obs, {})

    def add_observations(
        self,
        taxon_id: int,
        count: int,
        *,
        first_id: int = 1,
        photos_per_observation: int = 1,
        first_photo_id: int | None = None,
        license_codes: Sequence[str | None] = ("cc-by",),
        quality_grades: Sequence[str] = ("research",),
        hosts: Sequence[str] = ("static",),
        exts: Sequence[str] = ("jpg",),
        **kw: Any,
    ) -> list[int]:
        """Add ``count`` observations with ids first_id, first_id+1, ...; returns the ids.

        Photo ids: ``obs_id * 10 + k`` for the k-th photo of each observation (so at most 10
        photos each), or ``first_photo_id + n`` for the n-th photo overall when given.
        ``license_codes``, ``hosts`` and ``exts`` cycle over the photos in order,
        ``quality_grades`` over the observations. Other keywords (observed_on, latitude,
        longitude, place_ids, user_login, padding, license_code, flagged) apply to every
        observation (``flagged``: to all their photos).
        """
        unknown = set(kw) - _BULK_KEYS
        if unknown:
            raise ValueError(f"unknown keywords {sorted(unknown)}")
        if first_photo_id is None and photos_per_observation > 10:
            raise ValueError("more than 10 photos per observation needs first_photo_id")
        if not license_codes or not quality_grades or not hosts or not exts:
            raise ValueError("the cycled sequences must not be empty")
        observed_on = kw.get("observed_on", "2020-08-27")
        latitude = float(kw.get("latitude", 50.09))
        longitude = float(kw.get("longitude", -104.71))
        place_ids = tuple(kw.get("place_ids", ()))
        user_login = kw.get("user_login", "samroom")
        padding = int(kw.get("padding", 0))
        obs_license = kw.get("license_code", ...)
        flagged = bool(kw.get("flagged", False))
        n_lic, n_q, n_h, n_e = len(license_codes), len(quality_grades), len(hosts), len(exts)
        records = []
        photo_index = 0
        for i in range(count):
            obs_id = first_id + i
            photos = []
            for k in range(photos_per_observation):
                pid = obs_id * 10 + k if first_photo_id is None else first_photo_id + photo_index
                photos.append(
                    _Photo(
                        pid,
                        license_codes[photo_index % n_lic],
                        hosts[photo_index % n_h],
                        exts[photo_index % n_e],
                        flagged,
                        None,
                        None,
                    )
                )
                photo_index += 1
            lic = obs_license if obs_license is not ... else (photos[0][1] if photos else None)
            records.append(
                _Obs(
                    obs_id,
                    taxon_id,
                    quality_grades[i % n_q],
                    observed_on,
                    latitude,
                    longitude,
                    place_ids,
                    user_login,
                    padding,
                    lic,
                    tuple(photos),
                )
            )
        with self._lock:
            self._insert(records)
        return [r.id for r in records]

    def _insert(self, records: list[_Obs]) -> None:
        """Validate everything first, then insert: a failed call changes nothing."""
        new_obs: set[int] = set()
        new_photos: set[int] = set()
        for obs in records:
            if obs.taxon_id not in self._taxa:
                raise ValueError(f"unknown taxon {obs.taxon_id}; add it first")
            if obs.id in self._obs or obs.id in new_obs:
                raise ValueError(f"observation {obs.id} already exists")
            new_obs.add(obs.id)
            for photo in obs.photos:
                if photo.id in self._photos or photo.id in new_photos:
                    raise ValueError(f"photo {photo.id} already exists")
                new_photos.add(photo.id)
        per_taxon: dict[int, int] = {}
        for obs in records:
            self._obs[obs.id] = obs
            for photo in obs.photos:
                self._photos[photo.id] = photo
            per_taxon[obs.taxon_id] = per_taxon.get(obs.taxon_id, 0) + 1
        for taxon_id, n in per_taxon.items():
            for ancestor in self._taxa[taxon_id].ancestor_ids:
                self._obs_counts[ancestor] = self._obs_counts.get(ancestor, 0) + n
        self._version += 1

    def observation(self, obs_id: int) -> dict[str, Any]:
        """The observation's JSON as the API would give it now."""
        with self._lock:
            return self._obs_json(self._obs[obs_id], {})

    def set_coordinates_privacy(
        self,
        obs_id: int,
        *,
        accuracy: int | None = None,
        geoprivacy: str | None = None,
        taxon_geoprivacy: str | None = None,
        omit: Iterable[str] = (),
    ) -> None:
        """How precise and how public an observation's coordinates are, as iNaturalist says.

        ``accuracy`` is the observer's positional accuracy (metres); ``geoprivacy`` the
        observer's choice and ``taxon_geoprivacy`` the taxon's (a threatened taxon's is
        "obscured"), each None, "open", "obscured" or "private". Either of the last two
        obscures the coordinates: ``obscured`` is true and the public accuracy at least
        OBSCURED_ACCURACY (the blurring cell); private ones are not shown at all. ``omit``
        names keys the JSON leaves out (an older or partial answer).
        """
        for value in (geoprivacy, taxon_geoprivacy):
            if value not in (None, "open", "obscured", "private"):
                raise ValueError("geoprivacy must be None, 'open', 'obscured' or 'private'")
        with self._lock:
            self._privacy[obs_id] = _Privacy(accuracy, geoprivacy, taxon_geoprivacy, tuple(omit))
            self._version += 1

    def _with_privacy(self, o: _Obs, body: dict[str, Any]) -> dict[str, Any]:
        """An observation's JSON with the coordinate privacy fields it was given."""
        privacy = self._privacy.get(o.id, _Privacy())
        hidden = (privacy.geoprivacy, privacy.taxon_geoprivacy)
        obscured = "obscured" in hidden or "private" in hidden
        public = max(privacy.accuracy or 0, OBSCURED_ACCURACY) if obscured else privacy.accuracy
        body.update(
            positional_accuracy=privacy.accuracy,
            public_positional_accuracy=None if "private" in hidden else public,
            obscured=obscured,
            geoprivacy=privacy.geoprivacy,
            taxon_geoprivacy=privacy.taxon_geoprivacy,
        )
        if "private" in hidden:
            body.update(location=None, geojson=None)
        for key in privacy.omit:
            body.pop(key, None)
        return body

    def _obs_json(self, o: _Obs, taxon_cache: dict[int, dict[str, Any]]) -> dict[str, Any]:
        taxon = taxon_cache.get(o.taxon_id)
        if taxon is None:
            taxon = taxon_cache[o.taxon_id] = self._taxon_json(self._taxa[o.taxon_id])
        photos = [self._photo_json(p, o.user_login) for p in o.photos]
        year, month, day = (o.observed_on.split("-") + ["1", "1"])[:3] if o.observed_on else (0, 0, 0)
        when = f"{o.observed_on}T12:00:00+00:00" if o.observed_on else None  # "": no date
        description = None
        if o.padding > 0:
            description = (_FILLER * (o.padding // len(_FILLER) + 1))[: o.padding]
        body = {
            "id": o.id,
            "uuid": _uuid(f"observation:{o.id}"),
            "uri": f"https://www.inaturalist.org/observations/{o.id}",
            "quality_grade": o.quality_grade,
            "observed_on": o.observed_on or None,
            "observed_on_string": o.observed_on or None,
            "observed_on_details": {
                "date": o.observed_on,
                "year": int(year),
                "month": int(month),
                "day": int(day),
            }
            if o.observed_on
            else None,
            "time_observed_at": when,
            "created_at": when or "2020-01-01T12:00:00+00:00",
            "updated_at": when or "2020-01-01T12:00:00+00:00",
            "species_guess": taxon.get("preferred_common_name") or taxon["name"],
            "description": description,
            "location": f"{o.latitude},{o.longitude}" if o.coordinates in ("both", "location") else None,
            "geojson": {"type": "Point", "coordinates": [o.longitude, o.latitude]}
            if o.coordinates in ("both", "geojson")
            else None,
            "geoprivacy": None,
            "obscured": False,
            "mappable": True,
            "positional_accuracy": None,
            "place_ids": list(o.place_ids),
            "license_code": o.license_code,
            "captive": False,
            "taxon": taxon,
            "community_taxon_id": o.taxon_id,
            "identifications_count": 1,
            "comments_count": 0,
            "faves_count": 0,
            "user": {
                "id": int(hashlib.md5(o.user_login.encode()).hexdigest()[:7], 16),
                "login": o.user_login,
                "name": None,
                "icon_url": None,
            },
            "photos": photos,
            "observation_photos": [
                {
                    "id": p["id"] + OBSERVATION_PHOTO_ID_OFFSET,
                    "position": i,
                    "uuid": _uuid(f"observation_photo:{p['id']}"),
                    "photo_id": p["id"],
                    "photo": p,
                }
                for i, p in enumerate(photos)
            ],
            "sounds": [],
            "tags": [],
            "flags": [],
        }
        return self._with_details(o.id, self._with_privacy(o, body))

    # ----------------------------------------------------------------- data: record details

    def set_observation_details(
        self,
        obs_id: int,
        *,
        time_observed_at: Any = ...,
        species_guess: Any = ...,
        community_taxon_id: Any = ...,
        user_name: Any = ...,
        uri: Any = ...,
    ) -> dict[str, Any]:
        """Give an observation the fields real ones carry that the defaults leave plain
        (for its coordinates' privacy: set_coordinates_privacy); returns its JSON. Each
        keyword left out keeps the default: ``time_observed_at`` noon of observed_on,
        ``species_guess`` the taxon's common name (else its name), ``community_taxon_id``
        the taxon, the user's ``name`` null, ``uri`` the observation's page.
        """
        given = {
            "time_observed_at": time_observed_at,
            "species_guess": species_guess,
            "community_taxon_id": community_taxon_id,
            "user_name": user_name,
            "uri": uri,
        }
        with self._lock:
            if obs_id not in self._obs:
                raise ValueError(f"unknown observation {obs_id}; add it first")
            fields = self._details.setdefault(obs_id, {})
            fields.update({k: v for k, v in given.items() if v is not ...})
            return self._obs_json(self._obs[obs_id], {})

    def _with_details(self, obs_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """The observation's JSON with the fields set by set_observation_details."""
        fields = dict(self._details.get(obs_id, {}))
        if "user_name" in fields:
            body["user"] = {**body["user"], "name": fields.pop("user_name")}
        body.update(fields)
        return body

    def _photo_json(self, p: _Photo, login: str) -> dict[str, Any]:
        width, height = _dimensions(p.id)
        if p.flagged:
            url = self._base("static") + PLACEHOLDER_PATH
            flags: list[dict[str, Any]] = [
                {"id": p.id % 100_000 + 1, "flag": "copyright infringement", "resolved": False}
            ]
        else:
            url = self._base("static") + NO_FILE_PATH if p.no_file else self._url(p, "square")
            flags = []
        return {
            "id": p.id,
            "license_code": p.license_code,
            "url": url,
            "attribution": attribution(login, p.license_code),
            "original_dimensions": {"width": width, "height": height},
            "flags": flags,
        }

    def _url(self, p: _Photo, size: str) -> str:
        if p.host == "open":
            return f"{self._base('open')}/photos/{p.id}/{size}.{p.ext}"
        return f"{self._base('static')}/photos/{p.id}/{size}.{p.ext}?{_timestamp(p.id)}"

    def photo_url(self, photo_id: int, size: str = "square") -> str:
        """Where the photo really lives at ``size`` (even when flagged)."""
        with self._lock:
            return self._url(self._photos[photo_id], size)

    def photo_bytes(self, photo_id: int, size: str) -> bytes:
        """Deterministic bytes for (photo, size): a real image that decoders open, of the
        pixel size ``photo_pixels`` gives, padded to a size-dependent length.

        The length is ``photo_size_bytes[size]`` exactly when set, else PHOTO_BASE_BYTES[size]
        plus up to 1/8 more depending on the id. The padding is a comment (JPEG COM, PNG
        tEXt, GIF comment extension) naming the photo, then hex filler. The file ends with
        the format's end marker (JPEG FFD9, PNG IEND, GIF ';') so truncation is detectable.
        A length too short for the image gives its first bytes only (not decodable).
        """
        photo = self._photos.get(photo_id)
        ext = photo.ext if photo is not None else "jpg"
        base = PHOTO_BASE_BYTES.get(size, 2_048)
        length = self.photo_lengths.get(photo_id, self.photo_size_bytes.get(size))
        if length is None:
            salt = (
                photo_id * 2_654_435_761 + PHOTO_SIZES.index(size) * 97 if size in PHOTO_SIZES else photo_id
            )
            length = base + salt % (base // 8)
        label = f"inat-test-photo {photo_id} {size} ".encode()
        if ext not in _IMAGE_BUILDERS:
            head, tail = _magic(ext, size)
            head += label
            fill = length - len(head) - len(tail)
            if fill < 0:
                return (head + tail)[:length]
            return head + _filler(photo_id, size, fill) + tail
        head, tail = _image_template(ext, *photo_pixels(photo_id, size))
        pad = length - len(head) - len(tail)
        if pad < _MIN_PAD[ext]:
            return (head + _PADDERS[ext](_MIN_PAD[ext], label) + tail)[:length]
        text = label + _filler(photo_id, size, max(0, pad - len(label)))
        return head + _PADDERS[ext](pad, text) + tail

    # ----------------------------------------------------------------- routing

    def _route(self, host: str, path: str, query: dict[str, str]) -> _Response:
        try:
            if host == "open" and path.startswith(OPEN_DATA_PREFIX + "/"):
                return self._serve_open_data(path)
            if path.startswith("/photos/"):
                return self._serve_photo(host, path)
            if host == "static":
                if path == "/v1" or path.startswith("/v1/"):
                    return self._serve_api(path, query)
                if path.startswith(("/assets/", "/attachment_defaults/")) and path.endswith(".png"):
                    return _Response(200, PLACEHOLDER_PNG, "image/png")
            return self._not_found(host)
        except Exception:
            self._note_error(traceback.format_exc())
            return _json_error(500, "Internal server error (bug in the test server)")

    @staticmethod
    def _not_found(host: str) -> _Response:
        if host == "open":
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
                b"<Message>The specified key does not exist.</Message></Error>"
            )
            return _Response(404, body, "application/xml")
        return _html_response(404, "Not Found")

    def _serve_photo(self, host: str, path: str) -> _Response:
        m = _PHOTO_RE.fullmatch(path)
        if m is None:
            return self._not_found(host)
        photo_id, size, ext = int(m.group(1)), m.group(2), m.group(3)
        with self._lock:
            photo = self._photos.get(photo_id)
        if photo is None or photo.host != host or size not in PHOTO_SIZES or ext != photo.ext:
            return self._not_found(host)
        if photo.gone is not None:
            resp = self._not_found(host)
            resp.status = photo.gone
            return resp
        content_type = photo.content_type or CONTENT_TYPES.get(ext, "application/octet-stream")
        body = self.photo_bytes(photo_id, size)
        validators = [
            ("ETag", '"' + hashlib.sha256(body).hexdigest()[:20] + '"'),
            ("Last-Modified", formatdate(_timestamp(photo_id), usegmt=True)),
            ("Accept-Ranges", "bytes"),
        ]
        return _Response(
            200, body, content_type, [("Cache-Control", "public, max-age=31536000"), *validators]
        )

    def _ranged(self, resp: _Response, headers: Any) -> _Response:
        """A photo's answer to ``Range: bytes=N-[M]``: 206 with that part while ``If-Range``
        (when sent) still names this body by its ETag or Last-Modified, else the whole 200."""
        asked = headers.get("Range")
        if resp.status != 200 or not self.ranges or asked is None:
            return resp
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", asked.strip())
        validators = dict(resp.headers)
        condition = headers.get("If-Range")
        if m is None or condition not in (None, validators["ETag"], validators["Last-Modified"]):
            return resp
        total = len(resp.body)
        start = int(m.group(1))
        end = min(int(m.group(2)), total - 1) if m.group(2) else total - 1
        if start >= total or end < start:
            return _Response(416, b"", None, [("Content-Range", f"bytes */{total}")])
        part = [("Content-Range", f"bytes {start}-{end}/{total}")]
        return _Response(206, resp.body[start : end + 1], resp.content_type, resp.headers + part)

    def _serve_api(self, path: str, query: dict[str, str]) -> _Response:
        if len(path) > 1:
            path = path.rstrip("/")
        try:
            if path == "/v1/taxa":
                return self._search_taxa(query)
            m = _TAXA_IDS_RE.fullmatch(path)
            if m is not None:
                found = self._taxa_by_id([int(x) for x in m.group(1).split(",")])
                return self._with_all_names(found) if query.get("all_names") == "true" else found
            if path == "/v1/observations":
                return self._search_observations(query)
            if path == "/v1/observations/species_counts":
                return self._species_counts(query)
        except _BadRequest as exc:
            return _json_error(422, str(exc))
        return _json_error(404, "Not found")

    # ----------------------------------------------------------------- /v1/taxa

    def _search_taxa(self, query: dict[str, str]) -> _Response:
        q_words = _words(query.get("q", ""))
        active = query.get("is_active", "true").strip().lower() or "true"
        ranks = {r.lower() for r in _csv(query.get("rank"))}
        per_page, page = self._paging(query)
        with self._lock:
            found: list[tuple[_Taxon, str]] = []
            for t in self._taxa.values():
                if active == "true" and not t.is_active:
                    continue
                if active == "false" and t.is_active:
                    continue
                if ranks and t.rank.lower() not in ranks:
                    continue
                term: str | None = t.name
                if q_words and not _prefix_match(q_words, t.name_words):
                    term = None
                    if t.common_name and _prefix_match(q_words, t.common_words):
                        term = t.common_name
                    else:
                        term = self._other_name_matched(t, q_words)
                if term is None:
                    continue
                term = self._other_name_matched(t, q_words, exactly=True) or term
                found.append((t, term))

            def count(t: _Taxon) -> int:
                if t.observations_count is not None:
                    return t.observations_count
                return self._obs_counts.get(t.id, 0)

            found.sort(key=lambda pair: (-count(pair[0]), pair[0].id))
            start = (page - 1) * per_page
            results = []
            for t, term in found[start : start + per_page]:
                item = self._taxon_json(t)
                item["matched_term"] = term
                if query.get("all_names") == "true":
                    item["names"] = self._all_names(t)
                results.append(item)
        return _json_response(
            200,
            {"total_results": len(found), "page": page, "per_page": per_page, "results": results},
        )

    def _taxa_by_id(self, ids: list[int]) -> _Response:
        if len(ids) > TAXA_IDS_MAX:
            return _json_error(422, "Too many IDs")
        with self._lock:
            results = [self._taxon_json(self._taxa[i]) for i in ids if i in self._taxa]
        if not results:
            return _json_error(404, "Not found")
        return _json_response(
            200,
            {"total_results": len(results), "page": 1, "per_page": len(results), "results": results},
        )

    def _with_all_names(self, resp: _Response) -> _Response:
        """A /taxa/{ids} answer with each taxon's ``names`` (``all_names=true``)."""
        if resp.status != 200:
            return resp
        payload = json.loads(resp.body)
        with self._lock:
            for item in payload["results"]:
                item["names"] = self._all_names(self._taxa[item["id"]])
        return _json_response(200, payload)

    @staticmethod
    def _paging(query: dict[str, str]) -> tuple[int, int]:
        per_page = _int_param(query, "per_page", DEFAULT_PER_PAGE)
        page = _int_param(query, "page", 1)
        assert per_page is not None and page is not None
        return max(0, min(per_page, MAX_PER_PAGE)), max(1, page)

    # ----------------------------------------------------------------- /v1/observations

    def _search_observations(self, query: dict[str, str]) -> _Response:
        per_page, page = self._paging(query)
        per_page = min(per_page, self.observations_max_per_page)
        if page * per_page > RESULT_WINDOW:
            return _json_response(403, {"error": WINDOW_ERROR, "status": 403})
        id_above = _int_param(query, "id_above", None)
        id_below = _int_param(query, "id_below", None)
        ascending = query.get("order", "desc").strip().lower() == "asc"
        with self._lock:
            ids, recs = self._filtered(query)
            lo = bisect_right(ids, id_above) if id_above is not None else 0
            hi = bisect_left(ids, id_below) if id_below is not None else len(ids)
            total = max(0, hi - lo)
            offset = (page - 1) * per_page
            if ascending:
                start = lo + offset
                chosen = recs[start : min(hi, start + per_page)] if start < hi else []
            else:
                end = hi - offset
                chosen = recs[max(lo, end - per_page) : end][::-1] if end > lo else []
            cache: dict[int, dict[str, Any]] = {}
            results = [self._obs_json(o, cache) for o in chosen]
        return _json_response(
            200,
            {"total_results": total, "page": page, "per_page": per_page, "results": results},
        )

    # ----------------------------------------------------------------- /v1/observations/species_counts

    def _species_counts(self, query: dict[str, str]) -> _Response:
        """Leaf taxa of the matching observations and how many each, as the real API counts them.

        As iNaturalistAPI's ``ESModel.ancestriesSpeciesCounts``: observations are counted by
        their taxon's ``min_species_taxon_id`` (the taxon itself, or its parent when it ranks
        below species: a variety's observations count for its species, a variety of a
        subspecies for the subspecies), then every counted taxon that is an ancestor of
        another counted one is dropped, with its count. Ordered by count, most first (ties
        by id); paged by ``page`` with ``per_page`` up to 500 (the default).
        """
        per_page = _int_param(query, "per_page", SPECIES_COUNTS_MAX_PER_PAGE)
        page = _int_param(query, "page", 1)
        assert per_page is not None and page is not None
        if per_page < 0:
            per_page = SPECIES_COUNTS_MAX_PER_PAGE
        per_page, page = min(per_page, self.species_counts_max_per_page), max(1, page)
        lowest = RANK_LEVELS.get(query.get("lrank", ""), 0)
        highest = RANK_LEVELS.get(query.get("hrank", ""), 100)
        ranks = {r.lower() for r in _csv(query.get("rank"))}
        with self._lock:
            _, recs = self._filtered(query)
            counts: dict[int, int] = {}
            for o in recs:
                taxon = self._taxa[o.taxon_id]
                level = RANK_LEVELS.get(taxon.rank, SPECIES_LEVEL)
                if not lowest <= level <= highest or (ranks and taxon.rank.lower() not in ranks):
                    continue
                key = taxon.parent_id if level < SPECIES_LEVEL and taxon.parent_id else taxon.id
                counts[key] = counts.get(key, 0) + 1
            ancestors = {a for key in counts for a in self._taxa[key].ancestor_ids[:-1]}
            leaves = sorted((-n, key) for key, n in counts.items() if key not in ancestors)
            if query.get("order", "desc").strip().lower() == "asc":
                leaves.sort(key=lambda pair: (-pair[0], pair[1]))
            offset = (page - 1) * per_page
            results = [
                {"count": -negative, "taxon": self._taxon_json(self._taxa[key])}
                for negative, key in leaves[offset : offset + per_page]
            ]
        return _json_response(
            200,
            {"total_results": len(leaves), "page": page, "per_page": per_page, "results": results},
        )

    def _filtered(self, query: dict[str, str]) -> tuple[list[int], list[_Obs]]:
        """Observations matching the filters, ascending by id; cached per (data, filters)
        so paging a 25,000-observation taxon costs a bisect per page, not a scan."""
        key = (self._version,) + tuple((k, query.get(k)) for k in _FILTER_KEYS)
        hit = self._query_cache.get(key)
        if hit is not None:
            self._query_cache.move_to_end(key)
            return hit
        if self._sorted_version != self._version:
            self._sorted_obs = sorted(self._obs.values(), key=lambda o: o.id)
            self._sorted_ids = [o.id for o in self._sorted_obs]
            self._sorted_version = self._version
        checks = self._checks(query)
        recs = [o for o in self._sorted_obs if all(check(o) for check in checks)]
        result = ([o.id for o in recs], recs)
        self._query_cache[key] = result
        while len(self._query_cache) > 64:
            self._query_cache.popitem(last=False)
        return result

    def _checks(self, query: dict[str, str]) -> list[Any]:
        checks: list[Any] = []
        taxon_ids = _csv_ints(query.get("taxon_id"), "taxon_id")
        if taxon_ids is not None:
            wanted = set(taxon_ids)
            allowed = {t.id for t in self._taxa.values() if wanted.intersection(t.ancestor_ids)}
            checks.append(lambda o: o.taxon_id in allowed)
        obs_ids = _csv_ints(query.get("id"), "id")
        if obs_ids is not None:
            id_set = set(obs_ids)
            checks.append(lambda o: o.id in id_set)
        photos = query.get("photos", "").strip().lower()
        if photos == "true":
            checks.append(lambda o: len(o.photos) > 0)
        elif photos == "false":
            checks.append(lambda o: len(o.photos) == 0)
        photo_licenses = {v.lower() for v in _csv(query.get("photo_license"))}
        if photo_licenses:
            checks.append(lambda o: any((p.license_code or "").lower() in photo_licenses for p in o.photos))
        licenses = {v.lower() for v in _csv(query.get("license"))}
        if licenses:
            checks.append(lambda o: (o.license_code or "").lower() in licenses)
        grades = {v.lower() for v in _csv(query.get("quality_grade"))}
        if grades:
            checks.append(lambda o: o.quality_grade in grades)
        place_ids = _csv_ints(query.get("place_id"), "place_id")
        if place_ids is not None:
            place_set = set(place_ids)
            checks.append(lambda o: not place_set.isdisjoint(o.place_ids))
        box = [_float_param(query, k) for k in ("swlat", "swlng", "nelat", "nelng")]
        if all(v is not None for v in box):
            swlat, swlng, nelat, nelng = (float(v) for v in box)  # type: ignore[arg-type]
            if swlng <= nelng:
                checks.append(lambda o: swlat <= o.latitude <= nelat and swlng <= o.longitude <= nelng)
            else:  # the box crosses the antimeridian
                checks.append(
                    lambda o: swlat <= o.latitude <= nelat and (o.longitude >= swlng or o.longitude <= nelng)
                )
        d1 = (query.get("d1") or "")[:10]
        if d1:
            checks.append(lambda o: o.observed_on >= d1)
        d2 = (query.get("d2") or "")[:10]
        if d2:
            checks.append(lambda o: o.observed_on <= d2)
        return checks

    # ----------------------------------------------------------------- the open data

    @property
    def open_data_url(self) -> str:
        """The open data's base URL (like https://inaturalist-open-data.s3.amazonaws.com)."""
        return self.open_url + OPEN_DATA_PREFIX

    def open_data_requests(self) -> list[RecordedRequest]:
        """Requests to the open data (its tables and its photos)."""
        return self.requests_to(OPEN_DATA_PREFIX + "/", host="open")

    def _in_open_data(self, photo: _Photo) -> bool:
        """The dump holds open-licensed photos only; a flagged (hidden) one is left out."""
        return photo.license_code is not None and not photo.flagged

    def open_data_rows(self, table: str) -> list[list[str]]:
        """The table's rows as iNaturalist's dump would give them for this world, header
        first: only observations with an open-licensed photo, licences in capitals."""
        with self._lock:
            observations = [self._obs[i] for i in sorted(self._obs)]
            taxa = [self._taxa[i] for i in sorted(self._taxa)]
        kept = [o for o in observations if any(self._in_open_data(p) for p in o.photos)]
        rows: list[list[str]] = [list(OPEN_DATA_COLUMNS[table])]
        if table == "taxa":
            for t in taxa:
                ancestry = "/".join(str(a) for a in t.ancestor_ids[:-1])
                level = f"{float(RANK_LEVELS.get(t.rank, 10)):g}"
                rows.append([str(t.id), ancestry, level, t.rank, t.name, "true" if t.is_active else "false"])
        elif table == "observations":
            for o in kept:
                shown = self._with_privacy(o, {"location": o.coordinates != "none"})  # public ones only
                place = [str(o.latitude), str(o.longitude)] if shown["location"] else ["", ""]
                accuracy = shown.get("public_positional_accuracy")
                uuid, observer = _uuid(f"observation:{o.id}"), str(_observer_id(o.user_login))
                row = [uuid, observer, *place, "" if accuracy is None else str(accuracy), str(o.taxon_id)]
                rows.append([*row, o.quality_grade, o.observed_on, "1.0"])
        elif table == "photos":
            for o in kept:
                for position, p in enumerate(o.photos):
                    if self._in_open_data(p):
                        width, height = _dimensions(p.id)
                        rows.append(
                            [
                                _uuid(f"photo:{p.id}"), str(p.id), _uuid(f"observation:{o.id}"),
                                str(_observer_id(o.user_login)), p.ext, (p.license_code or "").upper(),
                                str(width), str(height), str(position),
                            ]
                        )  # fmt: skip
        elif table == "observers":
            logins = sorted({o.user_login for o in kept})
            rows.extend([str(_observer_id(login)), login, ""] for login in logins)
        else:
            raise ValueError(f"unknown open-data table {table!r}")
        return rows

    def open_data_table(self, table: str) -> bytes:
        """The gzip'd tab-separated body of ``<table>.csv.gz`` (no quoting), cached."""
        with self._lock:
            cached = self._open_data_cache.get(table)
            if cached is not None and cached[0] == self._version:
                return cached[1]
        text = "".join("\t".join(row) + "\n" for row in self.open_data_rows(table))
        body = gzip_bytes(text.encode())
        with self._lock:
            self._open_data_cache[table] = (self._version, body)
        return body

    def _serve_open_data(self, path: str) -> _Response:
        rest = path[len(OPEN_DATA_PREFIX) :]
        m = _PHOTO_RE.fullmatch(rest)
        if m is not None:
            return self._serve_open_data_photo(int(m.group(1)), m.group(2), m.group(3))
        table = rest.lstrip("/").removesuffix(".csv.gz")
        if not rest.endswith(".csv.gz") or table not in OPEN_DATA_TABLES + tuple(self.open_data_files):
            return self._not_found("open")
        body = self.open_data_files[table] if table in self.open_data_files else self.open_data_table(table)
        if body is None:
            return self._not_found("open")
        validators = [
            ("ETag", '"' + hashlib.md5(body).hexdigest() + '"'),
            ("Last-Modified", formatdate(self.open_data_modified, usegmt=True)),
            ("Accept-Ranges", "bytes"),
        ]
        return _Response(200, body, "application/x-gzip", validators)

    def _serve_open_data_photo(self, photo_id: int, size: str, ext: str) -> _Response:
        with self._lock:
            photo = self._photos.get(photo_id)
        if photo is None or not self._in_open_data(photo) or size not in PHOTO_SIZES or ext != photo.ext:
            return self._not_found("open")
        if photo.gone is not None:
            resp = self._not_found("open")
            resp.status = photo.gone
            return resp
        body = self.photo_bytes(photo_id, size)
        validators = [
            ("ETag", '"' + hashlib.sha256(body).hexdigest()[:20] + '"'),
            ("Last-Modified", formatdate(_timestamp(photo_id), usegmt=True)),
            ("Accept-Ranges", "bytes"),
        ]
        content_type = photo.content_type or CONTENT_TYPES.get(ext, "application/octet-stream")
        return _Response(200, body, content_type, validators)

    @staticmethod
    def _open_data_conditional(resp: _Response, headers: Any) -> _Response:
        """304 to a GET whose If-None-Match or If-Modified-Since still names this body."""
        if resp.status != 200:
            return resp
        validators = dict(resp.headers)
        etag, modified = headers.get("If-None-Match"), headers.get("If-Modified-Since")
        if (etag is not None and etag == validators.get("ETag")) or (
            etag is None and modified is not None and modified == validators.get("Last-Modified")
        ):
            return _Response(304, b"", None, [(k, v) for k, v in resp.headers if k != "Accept-Ranges"])
        return resp


def _observer_id(login: str) -> int:
    """The user id the API gives a login (the observers table's observer_id)."""
    return int(hashlib.md5(login.encode()).hexdigest()[:7], 16)


def gzip_bytes(data: bytes) -> bytes:
    """gzip with a fixed mtime: the same table gives the same bytes (and ETag) every time."""
    return gzip.compress(data, mtime=0)
