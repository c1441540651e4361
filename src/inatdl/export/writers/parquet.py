"""`--format parquet`: `data/<split>-<NNNNN>-of-<MMMMM>.parquet`, the Hugging Face hub's own
layout: an `image` column ({bytes, path}, the hub's Image feature), `label` (a ClassLabel
with the same names in every split) and photos.csv's columns, typed.

Written with pyarrow (imported here only) a row group at a time, so memory stays flat
however many photos; the features are in the schema's `huggingface` metadata.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from inatdl.errors import ExportError
from inatdl.export.model import ExportPhoto
from inatdl.export.selection import Measure
from inatdl.export.writers import CroissantParts, literal
from inatdl.export.writers._shards import Shard, ShardWriter, read_file

if TYPE_CHECKING:
    import numpy as np

DATA_DIR = "data"
#: A row group holds at least this many photos (what the hub writes for image datasets)
#: and grows until its images reach ROW_GROUP_BYTES: small photos in groups of 100 made
#: the writer's per-group work cost more than the bytes.
ROW_GROUP_PHOTOS = 100
ROW_GROUP_BYTES = 4 << 20
#: ...and holds at most this many: a group's rows are Python objects while it is made (4,000
#: photos of 1 kB took a worker ~25 MB more at its peak, for no gain in speed).
ROW_GROUP_MOST_PHOTOS = 1000
#: photos.csv's columns that are numbers or true/false (as `photos plan` types them); any
#: other column is text as written.
INTEGER_COLUMNS = (
    "photo_id",
    "observation_id",
    "taxon_id",
    "observed_taxon_id",
    "bytes",
    "positional_accuracy",
)
FLOAT_COLUMNS = ("latitude", "longitude")
BOOLEAN_COLUMNS = ("coordinates_obscured",)
BOOLEANS = {"true": True, "false": False, "": None}  # as photos.csv writes them
#: A bound on what a file holds beside its samples (magic, footer, schema with the labels).
_FILE_OVERHEAD = 64 * 1024
_SAMPLE_OVERHEAD = 64


class ParquetWriter(ShardWriter):
    """Parquet files of at most --shard-size, in row groups of ROW_GROUP_PHOTOS photos or
    more (up to ROW_GROUP_BYTES of images, or ROW_GROUP_MOST_PHOTOS photos)."""

    #: 2: images stored without snappy, larger row groups (an update rewrites older files);
    #: 3: row groups of at most ROW_GROUP_MOST_PHOTOS photos.
    version = 3

    def shard_name(self, split: str, index: int, count: int) -> str:
        return f"{DATA_DIR}/{split}-{index:05d}-of-{count:05d}.parquet"

    @classmethod
    def measure(cls, columns: tuple[str, ...]) -> Measure:
        """The bytes of each row's text (its path twice: as a column and as the image's)."""
        path_at = columns.index("path")

        def text_bytes(values: Sequence[str]) -> int:
            return len("".join(values).encode()) + len(values[path_at])

        return text_bytes

    def sample_bytes(self, label: int, size: int, measured: int) -> int:
        """A bound: the image, the row's text, and the page and offset bytes around them."""
        columns = len(self.context.selection.columns) + 2
        return size + measured + _SAMPLE_OVERHEAD + 16 * columns + len(self._labels_json) // ROW_GROUP_PHOTOS

    def shard_bytes(self, samples_bytes: int) -> int:
        return samples_bytes + _FILE_OVERHEAD + len(self._labels_json)

    def fingerprint_extra(self) -> str:
        return self._labels_json + json.dumps(self.context.selection.columns)

    @functools.cached_property
    def _labels_json(self) -> str:
        return json.dumps(self.context.report.labels, ensure_ascii=False)

    def schema(self) -> pa.Schema:
        fields = [
            pa.field("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            pa.field("label", pa.int64()),
            *(pa.field(c, _arrow_type(c)) for c in self.context.selection.columns),
        ]
        features: dict[str, Any] = {
            "image": {"_type": "Image"},
            "label": {"names": self.context.report.labels, "_type": "ClassLabel"},
        }
        for column in self.context.selection.columns:
            features[column] = {"dtype": _dtype(column), "_type": "Value"}
        metadata = {"huggingface": json.dumps({"info": {"features": features}}, ensure_ascii=False)}
        return pa.schema(fields, metadata=metadata)

    def write_shard(self, handle: BinaryIO, shard: Shard) -> None:
        """The images stored as they are (a JPEG does not compress: snappy over them cost
        more than writing them), the other columns with snappy. (Not on a thread of its own,
        as the tar's pieces are: at a million small photos that cost a quarter more CPU
        and 40 MB more memory.)"""
        schema = self.schema()
        with self._parquet_writer(handle, schema) as writer:
            selection = self.context.selection
            sizes = (chunk["size"] for chunk in selection.between(shard.start, shard.stop))
            for start, end in _row_groups(sizes):
                group = list(selection.photos(selection.between(shard.start + start, shard.start + end)))
                writer.write_table(self._table(group, schema), row_group_size=len(group))
                # pyarrow's pool keeps what it freed (~35 MB a worker process): handed back
                pa.default_memory_pool().release_unused()

    def _parquet_writer(self, handle: BinaryIO, schema: pa.Schema) -> pq.ParquetWriter:
        text_columns = ["label", *self.context.selection.columns]
        compression = {"image.bytes": "none", "image.path": "snappy", "label": "snappy"}
        compression.update({c: "snappy" for c in self.context.selection.columns})
        return pq.ParquetWriter(
            handle,
            schema,
            compression=compression,
            use_dictionary=text_columns,
            write_statistics=text_columns,
        )

    def before_workers(self) -> None:
        """One photo written to a file in memory, so that what pyarrow sets up on its first
        write of these columns (encoders, codecs, pools) is made once, here, and shared by
        the forked workers (each made its own: ~20 MB a worker at a million photos)."""
        schema = self.schema()
        with self._parquet_writer(io.BytesIO(), schema) as writer:
            selection = self.context.selection
            writer.write_table(self._table(list(selection.photos(selection.between(0, 1))), schema))

    def _table(self, samples: Sequence[ExportPhoto], schema: pa.Schema) -> pa.Table:
        """One row group: the images read now, so only one group's are held at once."""
        root = os.path.join(str(self.context.data_dir), "")
        contents = [read_file(root + s.path, s.size) for s in samples]
        names = [s.path.rsplit("/", 1)[-1] for s in samples]
        image_type = schema.field("image").type
        arrays = [
            pa.StructArray.from_arrays(
                [pa.array(contents, pa.binary()), pa.array(names, pa.string())], fields=list(image_type)
            ),
            pa.array([s.label_index for s in samples], pa.int64()),
        ]
        cells = zip(*(s.values for s in samples), strict=True)  # the rows' cells, a column at a time
        for column, values in zip(self.context.selection.columns, cells, strict=True):
            arrays.append(_column(column, list(values), samples))
        return pa.Table.from_arrays(arrays, schema=schema)

    def data_files(self) -> dict[str, str]:
        return {split: f"{DATA_DIR}/{split}-*" for split in self.split_files()}

    def loading(self, folder: str) -> list[str]:
        return [
            "```python",
            "from datasets import load_dataset",
            f"dataset = load_dataset({literal(folder)})  # reads this card: the splits",
            'label = dataset["train"].features["label"]  # a ClassLabel: label.int2str(i) is the taxon',
            "```",
            "",
            "`image` is the photo as downloaded, `label` the index of the taxon's accepted scientific "
            "name (the same names in every split), and every column of photos.csv comes along "
            "(licence, attribution, observer, observation, coordinates, date). With pandas: "
            f"`pandas.read_parquet({literal(f'{folder}/{DATA_DIR}')})`.",
        ]

    def croissant(self) -> CroissantParts:
        files = {
            "@type": "cr:FileSet",
            "@id": "parquet-files",
            "name": "parquet-files",
            "description": "The Parquet files of every split.",
            "encodingFormat": "application/x-parquet",
            "includes": [f"{DATA_DIR}/*.parquet"],
        }

        def column(name: str) -> dict[str, Any]:
            return {"fileSet": {"@id": "parquet-files"}, "extract": {"column": name}}

        sources = {name: column(name) for name in ("photo_id", "label", "license_code", "attribution")}
        sources["image"] = {**column("image"), "transform": {"jsonPath": "bytes"}}
        return CroissantParts([files], sources, label_type="sc:Integer")


WRITER = ParquetWriter


def _row_groups(sizes: Iterable[np.ndarray]) -> Iterator[tuple[int, int]]:
    """The samples (their images' sizes, a chunk at a time) cut into row groups of
    ROW_GROUP_PHOTOS photos or more, each closed once its images reach ROW_GROUP_BYTES or
    its photos ROW_GROUP_MOST_PHOTOS: where each starts and ends."""
    start, images, end = 0, 0, 0
    # as Python numbers a chunk at a time: a shard of 300,000 photos' as one list took 14 MB
    each = itertools.chain.from_iterable(piece.tolist() for piece in sizes)
    for end, size in enumerate(each, 1):
        images += size
        enough = end - start >= ROW_GROUP_PHOTOS and images >= ROW_GROUP_BYTES
        if enough or end - start >= ROW_GROUP_MOST_PHOTOS:
            yield start, end
            start, images = end, 0
    if start < end:
        yield start, end


def _dtype(column: str) -> str:
    if column in BOOLEAN_COLUMNS:
        return "bool"
    return "int64" if column in INTEGER_COLUMNS else "float64" if column in FLOAT_COLUMNS else "string"


def _arrow_type(column: str) -> pa.DataType:
    types = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(), "string": pa.string()}
    return types[_dtype(column)]


def _column(column: str, values: list[str], samples: Sequence[ExportPhoto]) -> pa.Array:
    """A column's cells typed: text as written, numbers parsed (an empty cell is null); a
    cell that is not a number is an error naming its photo."""
    kind = _dtype(column)
    if kind == "string":
        return pa.array(values, pa.string())
    if kind == "bool":
        return pa.array(
            [_boolean(column, value, sample) for value, sample in zip(values, samples, strict=True)]
        )
    number = int if kind == "int64" else float
    try:
        return pa.array([number(value) if value else None for value in values], _arrow_type(column))
    except ValueError:
        for value, sample in zip(values, samples, strict=True):
            try:
                number(value or 0)
            except ValueError:
                raise ExportError(
                    f"photos.csv gives photo {sample.photo_id} the {column} {value!r}, not a "
                    "number; run `inatdl photos fetch` to rewrite it"
                ) from None
        raise


def _boolean(column: str, value: str, sample: ExportPhoto) -> bool | None:
    """A true/false cell of photos.csv (an empty one is null); anything else is an error."""
    if value not in BOOLEANS:
        raise ExportError(
            f"photos.csv gives photo {sample.photo_id} the {column} {value!r}, not true or "
            "false; run `inatdl photos fetch` to rewrite it"
        )
    return BOOLEANS[value]
