"""`--format webdataset`: tar shards `<split>-<NNNNN>.tar` of samples keyed by photo id —
the image as downloaded, `.cls` (the label's index in labels.txt), `.json` (its photos.csv
row and label) — that the `webdataset` library and Hugging Face's loader stream.

The tars are deterministic (members sorted, fixed mtime, owner and mode), so the same
export twice is byte-identical and a re-upload changes nothing.
"""

from __future__ import annotations

import operator
import os
import tarfile
from json.encoder import encode_basestring
from typing import Any, BinaryIO

from inatdl.export.writers import CroissantParts, literal
from inatdl.export.writers._shards import Sample, Shard, ShardWriter, read_file
from inatdl.files import atomic_write_text

LABELS_NAME = "labels.txt"
#: The image extensions a sample may have: each is declared in the card, so Hugging Face's
#: loader does not infer the columns from the first samples (a png after jpgs would fail).
IMAGE_EXTENSIONS = ("jpeg", "jpg", "png")
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
FIXED_MTIME = 0  # 1970-01-01: the same bytes on every run
_ZEROS = bytes(_BLOCK)
#: Samples are written to the shard in pieces of about this many bytes.
_WRITE_BYTES = 4 << 20


def _blocks(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


class WebDatasetWriter(ShardWriter):
    """Tar shards of at most --shard-size, one sample a photo."""

    def extra_files(self) -> list[str]:
        return [LABELS_NAME]

    def shard_name(self, split: str, index: int, count: int) -> str:
        return f"{split}-{index:05d}.tar"

    def sample_bytes(self, sample: Sample) -> int:
        """Exact: a header block a member, its data padded to whole blocks."""
        return (
            3 * _BLOCK + _blocks(sample.size) + _blocks(len(_cls(sample))) + _blocks(len(self._json(sample)))
        )

    def shard_bytes(self, samples_bytes: int) -> int:
        """Exact: two zero blocks end the archive, padded to whole records (as tarfile writes)."""
        return -(-(samples_bytes + 2 * _BLOCK) // _RECORD) * _RECORD

    def _json(self, sample: Sample) -> bytes:
        """Its photos.csv row and label as a JSON object, as json.dumps writes it (each
        value encoded alone: twice as fast at a million photos)."""
        if not hasattr(self, "_keys"):
            self._keys = [f"{encode_basestring(c)}: " for c in (*self.context.selection.columns, "label")]
        values = (*sample.photo.values, sample.photo.label)
        pairs = ", ".join(map(operator.add, self._keys, map(encode_basestring, values)))
        return f"{{{pairs}}}".encode()

    def write_shard(self, handle: BinaryIO, shard: Shard) -> None:
        """The tar written directly, as tarfile writes a USTAR archive (a third of the time
        tarfile takes over its headers): members sorted by name, then two zero blocks and
        padding to a whole record. Samples are gathered and written a few MB at a time: a
        write a member cost more than `tar` takes for the whole shard."""
        root = str(self.context.data_dir)
        written = 0
        pending = bytearray()
        for sample in shard.samples:
            key = sample.photo.photo_id
            image = read_file(os.path.join(root, sample.photo.path), sample.size)
            members = [
                (f"{key}.cls", _cls(sample)),
                (f"{key}.{_extension(sample)}", image),
                (f"{key}.json", self._json(sample)),
            ]
            members.sort(key=_member_name)
            for name, data in members:
                pending += ustar_header(name, len(data))
                pending += data
                pending += _ZEROS[: -len(data) % _BLOCK]
            if len(pending) >= _WRITE_BYTES:
                handle.write(pending)
                written += len(pending)
                del pending[:]
        written += len(pending)
        pending += bytes(self.shard_bytes(written) - written)
        handle.write(pending)

    def write_extra_files(self) -> None:
        labels = "".join(f"{label}\n" for label in self.context.report.labels)
        atomic_write_text(self.context.out_dir / LABELS_NAME, labels)

    def data_files(self) -> dict[str, str]:
        return {split: f"{split}-*.tar" for split in self.split_files()}

    def features(self) -> list[dict[str, Any]]:
        columns = [{"name": c, "dtype": "string"} for c in (*self.context.selection.columns, "label")]
        present = {_extension(sample) for shard in self.shards for sample in shard.samples}
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


def _member_name(member: tuple[str, bytes]) -> str:
    return member[0]


def _cls(sample: Sample) -> bytes:
    return str(sample.label).encode()


def _extension(sample: Sample) -> str:
    return sample.photo.path.rsplit(".", 1)[-1].lower()


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


def ustar_header(name: str, size: int) -> bytes:
    """A regular file's USTAR header, the same bytes on every run and machine."""
    encoded = name.encode("utf-8")
    if len(encoded) > 100:
        raise ValueError(f"a tar member name over 100 bytes: {name!r}")
    size_field = b"%011o\0" % size
    checksum = b"%06o\0 " % (_TEMPLATE_SUM + sum(encoded) + sum(size_field))
    return b"".join(
        (encoded, _TEMPLATE[len(encoded) : 124], size_field, _TEMPLATE[136:148], checksum, _TEMPLATE[156:])
    )
