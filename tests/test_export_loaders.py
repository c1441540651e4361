"""The three formats read by the real loaders, as their users read them: the `webdataset`
library, Hugging Face's `load_dataset(OUT_DIR)` (the card's header alone tells it the
format, splits and columns) and `mlcroissant` on croissant.json.

Marked ``loaders`` (``nox -s loaders`` installs them); skipped where a loader is absent."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from inat_server import InatServer, photo_pixels
from test_export import SPLIT, TAXA, build_world, export, fetch
from world import manifest, write_taxa

pytestmark = pytest.mark.loaders
FORMATS = ("imagefolder", "webdataset", "parquet")


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Path]]]:
    """One data dir (jpg and png photos of three taxa) exported in each format."""
    root = tmp_path_factory.mktemp("loaders")
    data = root / "data"
    with InatServer() as inat:
        build_world(inat)
        write_taxa(data, TAXA)
        fetch(inat, data)
        outs = {}
        for format_ in FORMATS:
            outs[format_] = root / format_
            result = export(
                inat, data, outs[format_], "--split", SPLIT, "--format", format_, "--shard-size", "100kB"
            )
            assert result.exit_code == 0, result.output
        yield data, outs


@pytest.fixture(scope="module")
def hf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    datasets = pytest.importorskip("datasets")
    cache = tmp_path_factory.mktemp("hf")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "HF_HOME": cache,
            "HF_DATASETS_CACHE": cache / "datasets",
            "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }.items():
            patch.setenv(name, str(value))
        datasets.disable_progress_bars()
        yield datasets


def split_of(data: Path, outs: dict[str, Path]) -> dict[str, str]:
    """Each photo's split in the imagefolder export, which every format must repeat."""
    import csv

    splits = {}
    for path in outs["imagefolder"].glob("*/metadata.csv"):
        with path.open(encoding="utf-8", newline="") as handle:
            splits.update({row["photo_id"]: path.parent.name for row in csv.DictReader(handle)})
    assert len(splits) == len(manifest(data))
    return splits


@pytest.mark.parametrize("format_", FORMATS)
def test_load_dataset_reads_each_format_as_it_is(
    exports: tuple[Path, dict[str, Path]], hf: ModuleType, format_: str
) -> None:
    data, outs = exports
    rows = {row["photo_id"]: row for row in manifest(data)}
    dataset = hf.load_dataset(str(outs[format_]), cache_dir=str(outs[format_].parent / f"cache-{format_}"))
    labels = sorted({row["taxon_name"] for row in rows.values()})
    seen: dict[str, str] = {}
    for split, records in dataset.items():
        for record in records:
            photo_id, label, image = _sample(format_, record, labels)
            photo = rows[photo_id]
            assert label == photo["taxon_name"]
            assert image.size == photo_pixels(int(photo_id), "square")
            image.load()
            seen[photo_id] = split
    assert seen == split_of(data, outs)  # every photo once, in the same split as the imagefolder's
    if format_ == "parquet":
        assert all(split.features["label"].names == labels for split in dataset.values())


def _sample(format_: str, record: dict[str, Any], labels: list[str]) -> tuple[str, str, Any]:
    if format_ == "webdataset":
        image = record["jpg"] or record["jpeg"] or record["png"]
        assert record["json"]["label"] == labels[record["cls"]]
        return record["__key__"], labels[record["cls"]], image
    label = labels[record["label"]] if format_ == "parquet" else record["label"]
    return str(record["photo_id"]), label, record["image"]


def test_the_webdataset_library_streams_the_shards(exports: tuple[Path, dict[str, Path]]) -> None:
    wds = pytest.importorskip("webdataset")
    data, outs = exports
    rows = {row["photo_id"]: row for row in manifest(data)}
    labels = (outs["webdataset"] / "labels.txt").read_text(encoding="utf-8").splitlines()
    seen = {}
    for split in ("train", "validation", "test"):
        shards = sorted(str(p) for p in outs["webdataset"].glob(f"{split}-*.tar"))
        samples = (
            wds.WebDataset(shards, shardshuffle=False)
            .decode("pil")
            .to_tuple("__key__", "jpg;jpeg;png", "cls", "json")
        )
        for key, image, cls, row in samples:
            assert labels[cls] == rows[key]["taxon_name"] == row["label"]
            assert image.size == photo_pixels(int(key), "square")
            seen[key] = split
    assert seen == split_of(data, outs)


@pytest.mark.parametrize("format_", FORMATS)
def test_mlcroissant_validates_croissant_json(exports: tuple[Path, dict[str, Path]], format_: str) -> None:
    mlc = pytest.importorskip("mlcroissant")
    logging.getLogger("absl").setLevel(logging.ERROR)
    _, outs = exports
    dataset = mlc.Dataset(jsonld=str(outs[format_] / "croissant.json"))  # raises on any error
    assert dataset.metadata.name == "iNaturalist photos of 3 taxa (square)"
    if format_ == "parquet":  # its records read back, images decoded
        records = list(dataset.records("photos"))
        assert len(records) == sum(1 for _ in (outs["imagefolder"]).glob("*/*/*.*g"))
        assert all(record["photos/image"].size for record in records[:20])
