"""`--format webdataset`: tar shards `<split>-<NNNNN>.tar` of samples keyed by photo id —
the image as downloaded, `.cls` (the label's index in labels.txt), `.json` (its photos.csv
row and label) — that the `webdataset` library and Hugging Face's loader stream.

The tars are deterministic (members sorted, fixed mtime, owner and mode), so the same
export twice is byte-identical and a re-upload changes nothing.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any, BinaryIO

from inatdl.export.writers import CroissantParts, literal
from inatdl.export.writers._shards import Sample, Shard, ShardWriter
from inatdl.files import atomic_write_text

LABELS_NAME = "labels.txt"
#: The image extensions a sample may have: each is declared in the card, so Hugging Face's
#: loader does not infer the columns from the first samples (a png after jpgs would fail).
IMAGE_EXTENSIONS = ("jpeg", "jpg", "png")
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
FIXED_MTIME = 0  # 1970-01-01: the same bytes on every run


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
        row: dict[str, str] = dict(zip(self.context.selection.columns, sample.photo.values, strict=True))
        row["label"] = sample.photo.label
        return json.dumps(row, ensure_ascii=False).encode()

    def write_shard(self, handle: BinaryIO, shard: Shard) -> None:
        root = self.context.data_dir
        with tarfile.open(fileobj=handle, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for sample in shard.samples:
                key = sample.photo.photo_id
                extension = _extension(sample)
                members = [
                    (f"{key}.cls", _cls(sample)),
                    (f"{key}.{extension}", None),
                    (f"{key}.json", self._json(sample)),
                ]
                for name, data in sorted(members, key=lambda member: member[0]):
                    if data is None:
                        with (root / sample.photo.path).open("rb") as image:
                            tar.addfile(_member(name, sample.size), image)
                    else:
                        tar.addfile(_member(name, len(data)), io.BytesIO(data))

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


def _cls(sample: Sample) -> bytes:
    return str(sample.label).encode()


def _extension(sample: Sample) -> str:
    return sample.photo.path.rsplit(".", 1)[-1].lower()


def _member(name: str, size: int) -> tarfile.TarInfo:
    """A tar member with nothing that changes between runs or machines."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = FIXED_MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
