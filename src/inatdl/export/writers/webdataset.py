"""`--format webdataset`: tar shards `<split>-<NNNNN>.tar` of samples keyed by photo id —
the image as downloaded, `.cls` (the label's index in labels.txt), `.json` (its photos.csv
row and label) — that the `webdataset` library and Hugging Face's loader stream.

The tars are deterministic (members sorted, fixed mtime, owner and mode), so the same
export twice is byte-identical and a re-upload changes nothing.
"""

from __future__ import annotations

import functools
import operator
import os
import re
import tarfile
from collections.abc import Sequence
from json.encoder import encode_basestring
from typing import Any, BinaryIO

from inatdl.export.selection import Measure
from inatdl.export.writers import CroissantParts, literal
from inatdl.export.writers._shards import Shard, ShardWriter, WriteBehind, read_file
from inatdl.files import atomic_write_text

LABELS_NAME = "labels.txt"
#: The image extensions a sample may have: each is declared in the card, so Hugging Face's
#: loader does not infer the columns from the first samples (a png after jpgs would fail).
IMAGE_EXTENSIONS = ("jpeg", "jpg", "png")
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
FIXED_MTIME = 0  # 1970-01-01: the same bytes on every run
_ZEROS = bytes(_BLOCK)
#: Samples are written to the shard in pieces of about this many bytes (the kernel's copy of
#: a 4 MB piece, out of the CPU's cache by then, cost twice the system time).
_WRITE_BYTES = 1 << 20


def _blocks(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


class WebDatasetWriter(ShardWriter):
    """Tar shards of at most --shard-size, one sample a photo."""

    def extra_files(self) -> list[str]:
        return [LABELS_NAME]

    def shard_name(self, split: str, index: int, count: int) -> str:
        return f"{split}-{index:05d}.tar"

    @classmethod
    def measure(cls, columns: tuple[str, ...]) -> Measure:
        """The bytes of each row's JSON, read as the selection reads photos.csv."""
        return _Json(columns).length

    def sample_bytes(self, label: int, size: int, measured: int) -> int:
        """Exact: a header block a member, its data padded to whole blocks."""
        return 3 * _BLOCK + _blocks(size) + _blocks(len(str(label))) + _blocks(measured)

    def shard_bytes(self, samples_bytes: int) -> int:
        """Exact: two zero blocks end the archive, padded to whole records (as tarfile writes)."""
        return -(-(samples_bytes + 2 * _BLOCK) // _RECORD) * _RECORD

    def write_shard(self, handle: BinaryIO, shard: Shard) -> None:
        """The tar written directly, as tarfile writes a USTAR archive (a third of the time
        tarfile takes over its headers): members sorted by name, then two zero blocks and
        padding to a whole record. Samples are gathered and written a few MB at a time: a
        write a member cost more than `tar` takes for the whole shard."""
        with WriteBehind(handle) as behind:
            self._write_samples(behind, shard)

    def _write_samples(self, handle: WriteBehind, shard: Shard) -> None:
        root = os.path.join(str(self.context.data_dir), "")
        as_json = _Json(self.context.selection.columns).encode
        written = 0
        pending = bytearray()
        selection = self.context.selection
        for photo in selection.photos(selection.between(shard.start, shard.stop)):
            image = read_file(root + photo.path, photo.size)
            key = photo.photo_id.encode()
            extension = _extension(photo.path)
            members = (b"%d" % photo.label_index, image, as_json(photo.values))
            for at, suffix in _member_order(extension):
                data = members[at]
                pending += _member_header(key, suffix, len(data))
                pending += data
                pending += _ZEROS[: -len(data) % _BLOCK]
            if len(pending) >= _WRITE_BYTES:
                handle.write(pending)
                written += len(pending)
                pending = bytearray()
        written += len(pending)
        pending += bytes(self.shard_bytes(written) - written)
        handle.write(pending)

    def write_extra_files(self) -> None:
        labels = "".join(f"{label}\n" for label in self.context.report.labels)
        atomic_write_text(self.context.out_dir / LABELS_NAME, labels)

    def data_files(self) -> dict[str, str]:
        return {split: f"{split}-*.tar" for split in self.split_files()}

    def features(self) -> list[dict[str, Any]]:
        columns = [
            {"name": c, "dtype": "bool" if c in _JSON_BOOLEAN_COLUMNS else "string"}
            for c in (*self.context.selection.columns, "label")
        ]
        present = set(self.context.selection.extensions)
        images = [{"name": e, "dtype": "image"} for e in sorted({*IMAGE_EXTENSIONS, *present})]
        return [
            {"name": "cls", "dtype": "int64"},
            *images,
            {"name": "json", "struct": columns},
            {"name": "__key__", "dtype": "string"},
            {"name": "__url__", "dtype": "string"},
        ]

    def loading(self, folder: str) -> list[str]:
        files = self.split_files()
        first = next(iter(files))
        last = len(files[first]) - 1
        return [
            "```python",
            "from datasets import load_dataset",
            f"dataset = load_dataset({literal(folder)})  # reads this card: the splits and columns",
            "```",
            "",
            "Each sample is a photo keyed by its photo id: the image as downloaded (`jpg`, `jpeg` "
            "or `png`: the others are empty), `cls` (the label's index: the line of "
            f"[{LABELS_NAME}]({LABELS_NAME}), from 0, the same in every split) and `json` (its row of "
            "photos.csv: licence, attribution, observer, observation, coordinates, date; and `label`, "
            "the taxon's accepted scientific name).",
            "",
            "Streaming with the `webdataset` library:",
            "",
            "```python",
            "import webdataset as wds",
            f'labels = open({literal(f"{folder}/{LABELS_NAME}")}, encoding="utf-8").read().splitlines()',
            f"shards = {literal(f'{folder}/{first}-{{00000..{last:05d}}}.tar')}",
            'dataset = wds.WebDataset(shards, shardshuffle=False).decode("pil")',
            'samples = dataset.to_tuple("jpg;jpeg;png", "cls", "json")  # image, label index, row',
            "```",
        ]

    def croissant(self) -> CroissantParts:
        shards = {
            "@type": "cr:FileSet",
            "@id": "tar-shards",
            "name": "tar-shards",
            "description": "The WebDataset shards, one per split and --shard-size.",
            "encodingFormat": "application/x-tar",
            "includes": ["*.tar"],
        }
        images = {
            "@type": "cr:FileSet",
            "@id": "image-files",
            "name": "image-files",
            "description": "The photos as downloaded, one a sample.",
            "containedIn": {"@id": "tar-shards"},
            "encodingFormat": "image/jpeg",
            "includes": [f"*.{e}" for e in IMAGE_EXTENSIONS],
        }
        rows = {
            "@type": "cr:FileSet",
            "@id": "sample-json",
            "name": "sample-json",
            "description": "Each sample's photos.csv row and label.",
            "containedIn": {"@id": "tar-shards"},
            "encodingFormat": "application/json",
            "includes": ["*.json"],
        }

        def field(name: str) -> dict[str, Any]:
            return {"fileSet": {"@id": "sample-json"}, "extract": {"jsonPath": f"$.{name}"}}

        sources = {name: field(name) for name in ("photo_id", "label", "license_code", "attribution")}
        return CroissantParts(
            [shards, images, rows],
            sources,
            image_files="image-files",
            image_key=field("photo_id"),
            key_in_name=r"^([^.]+)\.",
        )


WRITER = WebDatasetWriter


def _extension(path: str) -> bytes:
    return path.rsplit(".", 1)[-1].lower().encode()


@functools.cache
def _member_order(extension: bytes) -> tuple[tuple[int, bytes], ...]:
    """A sample's members in the order of their names (``7.cls``, ``7.jpg``, ``7.json``; a
    png after the json), each as its place in (label, image, JSON) and its suffix: the
    names share the key, so the suffixes decide."""
    return tuple(sorted(enumerate((b"cls", extension, b"json")), key=operator.itemgetter(1)))


#: Columns written as JSON's true, false or null (photos.csv's true, false or empty), as
#: the Parquet export and `photos plan` type them; any other value stays text.
_JSON_BOOLEAN_COLUMNS = ("coordinates_obscured",)
_JSON_BOOLEANS = {"true": "true", "false": "false", "": "null"}


class _Json:
    """A row and its label as a JSON object, as json.dumps writes it (each value encoded
    alone: twice as fast at a million photos)."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.keys = [f"{encode_basestring(c)}: " for c in (*columns, "label")]
        self.label_at = columns.index("taxon_name")
        self.booleans_at = [i for i, c in enumerate(columns) if c in _JSON_BOOLEAN_COLUMNS]
        # the braces, the keys, each value's quotes and the separators between the pairs
        self.fixed = 2 + sum(len(key.encode()) + 2 for key in self.keys) + 2 * (len(self.keys) - 1)

    def encode(self, values: Sequence[str]) -> bytes:
        encoded = list(map(encode_basestring, (*values, values[self.label_at])))
        for at in self.booleans_at:
            encoded[at] = _JSON_BOOLEANS.get(values[at], encoded[at])
        pairs = ", ".join(map(operator.add, self.keys, encoded))
        return f"{{{pairs}}}".encode()

    def length(self, values: Sequence[str]) -> int:
        """``len(encode(values))`` without building it when no value has a character JSON
        escapes (as nearly every row): the selection measures every photo's row."""
        text = "".join(values)
        if _ESCAPED.search(text):
            return len(self.encode(values))
        label = values[self.label_at]
        unquoted = 0  # a boolean written bare: its length less the value's and its quotes
        for at in self.booleans_at:
            if (written := _JSON_BOOLEANS.get(values[at])) is not None:
                unquoted += len(written) - len(values[at]) - 2
        return self.fixed + _utf8_length(text) + _utf8_length(label) + unquoted


#: What encode_basestring writes other than as itself: quotes, backslashes, control characters.
_ESCAPED = re.compile(r'[\x00-\x1f"\\]')


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def _template() -> bytes:
    """The header fields that are the same for every member: mode 644, owner 0:0 with no
    names, modification time FIXED_MTIME, a regular file, USTAR's magic."""
    header = bytearray(_BLOCK)
    header[100:108] = b"0000644\0"
    header[108:116] = b"0000000\0"
    header[116:124] = b"0000000\0"
    header[136:148] = b"%011o\0" % FIXED_MTIME
    header[148:156] = b" " * 8  # the checksum counts its own field as spaces
    header[156:157] = tarfile.REGTYPE
    header[257:265] = tarfile.POSIX_MAGIC
    header[329:337] = b"0000000\0"
    header[337:345] = b"0000000\0"
    return bytes(header)


_TEMPLATE = _template()
_TEMPLATE_SUM = sum(_TEMPLATE)


def _member_header(key: bytes, suffix: bytes, size: int) -> bytes:
    """The USTAR header of a regular file named ``key.suffix`` (UTF-8), the same bytes on
    every run and machine: the template with the name, size and checksum put in."""
    name = b"%s.%s" % (key, suffix)
    if len(name) > 100:
        raise ValueError(f"a tar member name over 100 bytes: {name.decode()!r}")
    size_field = b"%011o\0" % size
    checksum = b"%06o\0 " % (_TEMPLATE_SUM + sum(name) + sum(size_field))
    return b"".join(
        (name, _TEMPLATE[len(name) : 124], size_field, _TEMPLATE[136:148], checksum, _TEMPLATE[156:])
    )
