"""`inatdl dataset export`: photos fetched over real HTTP, exported, loaded with the real
Hugging Face imagefolder loader (offline), and checked as a user of the dataset would."""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner
from inat_server import InatServer, photo_pixels
from world import manifest, run, write_taxa

from inatdl.cli import cli
from inatdl.splits import parse_splits, split_for, unit_hash
from inatdl.state import DataDirLock

SALICARIA, ALATUM, ROBUR = 61299, 61300, 56133
TAXA = [(SALICARIA, "Lythrum salicaria"), (ALATUM, "Lythrum alatum"), (ROBUR, "Quercus robur")]
LICENSES = ("cc-by", "cc0", "cc-by-nc", "cc-by-nd", "cc-by-sa", "cc-by-nc-sa", None)
SPLIT = "train=0.8,validation=0.1,test=0.1"
SHARES = {"train": 0.8, "validation": 0.1, "test": 0.1}
OBSERVERS = 15
#: torchvision's IMG_EXTENSIONS: the files ImageFolder takes as samples.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def add_observations(inat: InatServer, taxon_id: int, first: int, count: int) -> None:
    """Observations of 1-3 photos (a PNG among them), licences cycling, observers shared by
    every taxon so that grouping by observer spans taxa."""
    for obs_id in range(first, first + count):
        photos = [
            {
                "id": obs_id * 10 + k,
                "license_code": LICENSES[(obs_id + k) % len(LICENSES)],
                "ext": "png" if k == 1 else "jpg",
            }
            for k in range(1 + obs_id % 3)
        ]
        inat.add_observation(obs_id, taxon_id, photos=photos, user_login=f"observer{obs_id % OBSERVERS}")


def build_world(inat: InatServer) -> None:
    inat.add_taxon(1, "Plantae", rank="kingdom")
    for taxon_id, name in TAXA:
        inat.add_taxon(taxon_id, name, parent_id=1)
    add_observations(inat, SALICARIA, 1000, 150)
    add_observations(inat, ALATUM, 2000, 150)
    add_observations(inat, ROBUR, 3000, 2)


def fetch(inat: InatServer, data: Path, size: str = "square") -> None:
    result = run(inat, data, "--api-rate", "1000", "photos", "fetch", "--size", size, "--workers", "8")
    assert result.exit_code == 0, result.output


def export(inat: InatServer, data: Path, out: Path, *args: str) -> Any:
    return run(inat, data, "dataset", "export", str(out), *args)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by relative path, with the sha256 of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def exported_rows(out: Path) -> dict[str, list[dict[str, str]]]:
    """metadata.csv rows of each split folder."""
    return {p.parent.name: read_csv(p) for p in sorted(out.glob("*/metadata.csv"))}


def split_of_photo(out: Path) -> dict[str, str]:
    return {row["photo_id"]: split for split, rows in exported_rows(out).items() for row in rows}


@pytest.fixture(scope="module")
def hf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The `datasets` library, offline, its caches in a temporary folder."""
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
        import datasets

        datasets.disable_progress_bars()
        yield datasets


def fetched_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InatServer, Path]]:
    """A data dir of square photos (jpg and png) of three taxa (about 600 photos), and its
    server: a module's ``fetched`` fixture, fetched once for the module."""
    data = tmp_path_factory.mktemp("world") / "data"
    with InatServer() as inat:
        build_world(inat)
        write_taxa(data, TAXA)
        fetch(inat, data)
        yield inat, data


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InatServer, Path]]:
    yield from fetched_world(tmp_path_factory)


def load(hf: ModuleType, out: Path) -> Any:
    return hf.load_dataset(
        "imagefolder", data_dir=str(out), cache_dir=str(out.parent / f"{out.name}-hf-cache")
    )


def test_export_loads_with_hugging_face_imagefolder(
    fetched: tuple[InatServer, Path], hf: ModuleType, tmp_path: Path
) -> None:
    inat, data = fetched
    before = snapshot(data)
    by_id = {row["photo_id"]: row for row in manifest(data)}
    out = tmp_path / "dataset"

    result = export(inat, data, out, "--split", SPLIT)

    assert result.exit_code == 0, result.output
    assert snapshot(data) == before  # the data dir, state included, unchanged byte for byte
    dataset = load(hf, out)
    assert set(dataset) == {"train", "validation", "test"}
    seen: list[str] = []
    split_of_observation: dict[str, set[str]] = defaultdict(set)
    per_taxon: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))  # observations
    for split, rows in dataset.items():
        assert {"image", "label", "license_code", "attribution", "observer", "observation_id"} <= set(
            rows.column_names
        )
        for row in rows:
            photo = by_id[str(row["photo_id"])]
            seen.append(str(row["photo_id"]))
            assert row["label"] == photo["taxon_name"]
            assert row["license_code"] == photo["license_code"]
            assert row["attribution"] == photo["attribution"]
            assert row["image"].size == photo_pixels(int(row["photo_id"]), "square")
            row["image"].load()  # decodes
            split_of_observation[photo["observation_id"]].add(split)
            per_taxon[photo["taxon_name"]][split].add(photo["observation_id"])
    assert sorted(seen) == sorted(by_id)  # every photo exactly once
    assert all(len(splits) == 1 for splits in split_of_observation.values())
    for taxon in ("Lythrum salicaria", "Lythrum alatum"):  # about 140 observations each
        counts = {split: len(observations) for split, observations in per_taxon[taxon].items()}
        n = sum(counts.values())
        for split, share in SHARES.items():  # each observation an independent draw: within 3 sd
            assert abs(counts[split] / n - share) < 3 * math.sqrt(share * (1 - share) / n), (taxon, counts)
    assert "Too few observations for every split: Quercus robur (2 observations: none in" in result.output


def test_a_column_empty_throughout_one_split_stays_out_of_metadata(
    fetched: tuple[InatServer, Path], hf: ModuleType, tmp_path: Path
) -> None:
    """Hugging Face's loader infers each split's column types and refuses two that differ:
    dates missing from every photo of the test split would make it fail."""
    inat, data = fetched
    first = tmp_path / "first"
    assert export(inat, data, first, "--split", SPLIT).exit_code == 0
    in_test = {row["photo_id"] for row in exported_rows(first)["test"]}
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    rows = manifest(copy)
    for row in rows:
        if row["photo_id"] in in_test:
            row["observed_on"] = ""
    with (copy / "photos.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "dataset"

    result = export(inat, copy, out, "--split", SPLIT)

    assert result.exit_code == 0, result.output
    assert "Hugging Face's loader refuses; still in photos.csv): observed_on" in result.output
    dataset = load(hf, out)
    assert "observed_on" not in dataset["train"].column_names
    assert {"license_code", "attribution", "observer", "latitude"} <= set(dataset["test"].column_names)


def test_torchvision_imagefolder_sees_one_class_a_taxon(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    """torchvision's rule (datasets/folder.py): classes are the sorted subfolders, samples the
    files inside them with an image extension; metadata.csv beside them is not a class."""
    inat, data = fetched
    out = tmp_path / "dataset"
    assert export(inat, data, out, "--split", SPLIT).exit_code == 0
    train = out / "train"
    classes = sorted(entry.name for entry in os.scandir(train) if entry.is_dir())
    assert classes == ["Lythrum_alatum", "Lythrum_salicaria", "Quercus_robur"]
    samples = [p for c in classes for p in sorted((train / c).rglob("*")) if p.is_file()]
    assert samples and all(p.suffix.lower() in IMAGE_EXTENSIONS for p in samples)
    rows = read_csv(train / "metadata.csv")
    with (data / "photos.csv").open(encoding="utf-8") as handle:
        assert list(rows[0]) == ["file_name", "label", *handle.readline().strip().split(",")]
    assert sorted(r["file_name"] for r in rows) == sorted(p.relative_to(train).as_posix() for p in samples)
    assert all(r["file_name"].split("/")[0] == r["label"].replace(" ", "_") for r in rows)


def test_the_same_export_twice_gives_the_same_splits(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    inat, data = fetched
    first, second = tmp_path / "first", tmp_path / "second"
    assert export(inat, data, first, "--split", SPLIT).exit_code == 0
    again = export(inat, data, first, "--split", SPLIT)
    assert again.exit_code == 0 and ": 0 added (nothing new)" in again.output and " 0 removed" in again.output
    assert export(inat, data, second, "--split", SPLIT).exit_code == 0
    first_files, second_files = snapshot(first), snapshot(second)
    assert first_files.pop("README.md") != second_files.pop("README.md")  # the card names its folder
    assert first_files == second_files
    card = (second / "README.md").read_text(encoding="utf-8")
    assert card == (first / "README.md").read_text(encoding="utf-8").replace(str(first), str(second)).replace(
        "# first", "# second"
    ).replace('"first', '"second')
    other_seed = tmp_path / "seed"
    assert export(inat, data, other_seed, "--split", SPLIT, "--seed", "7").exit_code == 0
    assert split_of_photo(other_seed) != split_of_photo(first)


def test_group_by_observer_keeps_each_observer_in_one_split(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    inat, data = fetched
    out = tmp_path / "dataset"
    result = export(inat, data, out, "--split", "train=0.6,validation=0.2,test=0.2", "--group-by", "observer")
    assert result.exit_code == 0, result.output
    splits_of: dict[str, set[str]] = defaultdict(set)
    taxa_of: dict[str, set[str]] = defaultdict(set)
    for split, rows in exported_rows(out).items():
        for row in rows:
            splits_of[row["observer"]].add(split)
            taxa_of[row["observer"]].add(row["label"])
    assert len(splits_of) == OBSERVERS and all(len(taxa) >= 2 for taxa in taxa_of.values())  # spans taxa
    assert all(len(splits) == 1 for splits in splits_of.values()), splits_of
    assert len(set().union(*splits_of.values())) == 3


def test_new_photos_never_move_old_ones_and_gone_ones_leave(
    inat: InatServer, hf: ModuleType, tmp_path: Path
) -> None:
    build_world(inat)
    data, out = tmp_path / "data", tmp_path / "dataset"
    write_taxa(data, TAXA)
    fetch(inat, data)
    assert export(inat, data, out, "--split", SPLIT).exit_code == 0
    old = split_of_photo(out)
    # New observations get ids above every existing one, as on iNaturalist.
    add_observations(inat, SALICARIA, 4000, 60)
    add_observations(inat, ALATUM, 5000, 60)
    fetch(inat, data)
    gone = next(row for row in manifest(data) if row["photo_id"] in old)
    (data / gone["path"]).unlink()
    before = snapshot(data)

    result = export(inat, data, out, "--split", SPLIT)

    assert result.exit_code == 0, result.output
    assert snapshot(data) == before
    new = split_of_photo(out)
    gone_id = gone["photo_id"]
    assert {pid: old[pid] for pid in new if pid in old} == {
        pid: s for pid, s in old.items() if pid != gone_id
    }
    assert gone_id not in new and not (out / old[gone_id] / gone["path"].split("/", 1)[1]).exists()
    assert (out / old[gone_id] / gone["path"].split("/", 1)[1]).parent.is_dir()  # looked in the right place
    added = {pid for pid in new if pid not in old}
    assert added == {r["photo_id"] for r in manifest(data) if r["photo_id"] not in old}
    assert len(added) > 150
    assert "1 photo in photos.csv whose file is not in the data dir" in result.output
    dataset = load(hf, out)
    assert sorted(str(pid) for split in dataset.values() for pid in split["photo_id"]) == sorted(new)


def test_a_split_without_photos_has_no_folder(inat: InatServer, hf: ModuleType, tmp_path: Path) -> None:
    """Hugging Face's loader refuses a split whose metadata.csv lists no image, so a split
    that no group landed in gets no folder, and the summary says so."""
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(SALICARIA, "Lythrum salicaria", parent_id=1)
    add_observations(inat, SALICARIA, 1001, 1)  # one observation of three photos
    data, out = tmp_path / "data", tmp_path / "dataset"
    write_taxa(data, TAXA[:1])
    fetch(inat, data)
    where = split_for(unit_hash(0, "observation:1001"), parse_splits(SPLIT))
    empty = [name for name in SHARES if name != where]

    result = export(inat, data, out, "--split", SPLIT)

    assert result.exit_code == 0, result.output
    assert f"No photo in {' or '.join(empty)}, so no folder for them" in result.output
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [where]
    dataset = load(hf, out)
    assert list(dataset) == [where] and sorted(dataset[where]["photo_id"]) == [10010, 10011, 10012]


def test_hard_links_by_default_copies_with_copy(fetched: tuple[InatServer, Path], tmp_path: Path) -> None:
    inat, data = fetched
    before = snapshot(data)
    out = tmp_path / "dataset"
    result = export(inat, data, out)
    assert result.exit_code == 0 and "hard-linked, 0 copied" in result.output
    rows = read_csv(out / "metadata.csv")
    for row in rows:
        assert os.path.samefile(out / row["file_name"], data / row["path"])
    result = export(inat, data, out, "--copy")  # links become copies, never written through
    assert result.exit_code == 0 and f"{len(rows)} added (0 hard-linked, {len(rows)} copied)" in result.output
    for row in rows:
        exported, source = out / row["file_name"], data / row["path"]
        assert not os.path.samefile(exported, source) and exported.read_bytes() == source.read_bytes()
    assert snapshot(data) == before


@pytest.mark.parametrize(
    "error",
    [errno.EXDEV, errno.EINVAL, errno.ENOSYS],  # another disk; Windows on exFAT; some FUSE
)
def test_links_fall_back_to_copies_across_file_systems(
    fetched: tuple[InatServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    inat, data = fetched

    def cross_device(source: Any, target: Any) -> None:
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(os, "link", cross_device)
    out = tmp_path / "dataset"
    result = export(inat, data, out)
    assert result.exit_code == 0, result.output
    rows = read_csv(out / "metadata.csv")
    assert f"{len(rows)} added (0 hard-linked, {len(rows)} copied)" in result.output
    assert all((out / r["file_name"]).read_bytes() == (data / r["path"]).read_bytes() for r in rows)


def test_min_and_max_per_taxon(fetched: tuple[InatServer, Path], tmp_path: Path) -> None:
    inat, data = fetched
    out, again = tmp_path / "dataset", tmp_path / "again"
    result = export(inat, data, out, "--min-per-taxon", "10", "--max-per-taxon", "40")
    assert result.exit_code == 0, result.output
    assert "Left out, fewer than --min-per-taxon 10 photos: Quercus robur (" in result.output
    rows = read_csv(out / "metadata.csv")
    per_taxon = Counter(r["label"] for r in rows)
    assert per_taxon == {"Lythrum salicaria": 40, "Lythrum alatum": 40}
    for taxon in per_taxon:  # one photo of each observation first: 40 observations
        assert len({r["observation_id"] for r in rows if r["label"] == taxon}) == 40
    assert export(inat, data, again, "--min-per-taxon", "10", "--max-per-taxon", "40").exit_code == 0
    assert read_csv(again / "metadata.csv") == rows


def test_max_per_taxon_keeps_the_shares_of_the_splits(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    """The photos kept under the cap come from every split in the shares asked, not from the
    groups that hash lowest, which are all train."""
    inat, data = fetched
    out = tmp_path / "dataset"
    result = export(inat, data, out, "--split", SPLIT, "--max-per-taxon", "100")
    assert result.exit_code == 0, result.output
    observations: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for split, rows in exported_rows(out).items():
        for row in rows:
            observations[row["label"]][split].add(row["observation_id"])
    for taxon in ("Lythrum salicaria", "Lythrum alatum"):  # 100 of about 140 observations kept
        counts = {split: len(observations[taxon][split]) for split in SHARES}
        n = sum(counts.values())
        assert n == 100, counts
        for split, share in SHARES.items():
            assert abs(counts[split] / n - share) < 3 * math.sqrt(share * (1 - share) / n), (taxon, counts)


def test_without_split_one_set_of_taxon_folders(
    fetched: tuple[InatServer, Path], hf: ModuleType, tmp_path: Path
) -> None:
    inat, data = fetched
    out = tmp_path / "dataset"
    assert export(inat, data, out).exit_code == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "CREDITS.md", "Lythrum_alatum", "Lythrum_salicaria", "Quercus_robur", "README.md", "croissant.json",
        "metadata.csv",
    ]  # fmt: skip
    dataset = load(hf, out)
    assert list(dataset) == ["train"] and len(dataset["train"]) == len(manifest(data))


def test_card_and_credits(fetched: tuple[InatServer, Path], tmp_path: Path) -> None:
    inat, data = fetched
    out = tmp_path / "dataset"
    assert export(inat, data, out, "--split", SPLIT).exit_code == 0
    card = (out / "README.md").read_text(encoding="utf-8")
    rows = exported_rows(out)
    for taxon in ("Lythrum salicaria", "Lythrum alatum", "Quercus robur"):
        counts = [sum(r["label"] == taxon for r in rows[s]) for s in ("train", "validation", "test")]
        line = next(line for line in card.splitlines() if line.startswith(f"| {taxon} |"))
        assert line.split(" | ")[1:5] == [str(c) for c in [*counts, sum(counts)]]
    licences = Counter(r["license_code"] for split in rows.values() for r in split)
    assert set(licences) == {"cc-by", "cc0", "cc-by-nc", "cc-by-nd", "cc-by-sa", "cc-by-nc-sa"}
    for needs in (
        "credit the photographer",
        "non-commercial",
        "no derivatives",
        "share-alike",
        "public domain",
    ):
        assert needs in card, needs
    assert f"| [CC BY-NC](https://creativecommons.org/licenses/by-nc/4.0/) | {licences['cc-by-nc']} |" in card
    # Fetching again with other licences into the same data dir would leave the NC photos in it.
    assert "fetch into a data dir of its own with `inatdl --data-dir DIR photos fetch --license cc0" in card
    assert f"inatdl --data-dir {data} dataset export {out} --split {SPLIT}" in card
    credits = (out / "CREDITS.md").read_text(encoding="utf-8")
    for photo in manifest(data):
        assert (
            f"| {photo['photo_id']} | {photo['taxon_name']} | {photo['attribution']} | "
            f"{photo['license_code']} | {photo['observation_url']} |" in credits
        )


def test_the_cards_loading_code_gives_the_same_class_ids_in_every_split(
    fetched: tuple[InatServer, Path], hf: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quercus robur (2 observations) is missing from a split: numbering each split's own
    labels, as `class_encode_column` does, would give its id to another taxon there. The
    folder's name is in the code as a Python string, whatever it holds."""
    inat, data = fetched
    out = tmp_path / 'my "set" a\\b'
    result = export(inat, data, out, "--split", SPLIT)
    assert result.exit_code == 0 and "Quercus robur (2 observations: none in" in result.output
    card = (out / "README.md").read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in card.split("```python\n")[1:]]
    assert len(blocks) == 2 and "torchvision" in blocks[1]  # run where torchvision is installed
    assert f"""train = ImageFolder({json.dumps(f"{out.name}/train")})""" in blocks[1]
    compile(blocks[1], "card", "exec")
    code = blocks[0]
    monkeypatch.chdir(tmp_path)
    names: dict[str, Any] = {}
    exec(code, names)  # the card's own lines, as a reader pastes them
    dataset = names["dataset"]
    assert len({tuple(split.features["label"].names) for split in dataset.values()}) == 1
    for split in dataset.values():
        label = split.features["label"]
        assert [label.int2str(i) for i in split["label"]] == split["taxon_name"]


def test_the_cards_command_makes_the_same_export(fetched: tuple[InatServer, Path], tmp_path: Path) -> None:
    """The seed and the grouping choose the photos kept under --max-per-taxon, with or
    without splits, so the card's command names them."""
    inat, data = fetched
    out, again = tmp_path / "dataset", tmp_path / "again"
    args = ["--max-per-taxon", "40", "--seed", "5", "--group-by", "observer"]
    assert export(inat, data, out, *args).exit_code == 0
    card = (out / "README.md").read_text(encoding="utf-8")
    command = shlex.split(card.split("```\n", 2)[1])
    assert command[:6] == ["inatdl", "--data-dir", str(data), "dataset", "export", str(out)]
    result = CliRunner().invoke(cli, [*command[1:5], str(again), *command[6:]])
    assert result.exit_code == 0, result.output
    assert read_csv(again / "metadata.csv") == read_csv(out / "metadata.csv")


def test_credits_show_names_as_written(inat: InatServer, tmp_path: Path) -> None:
    """A photographer's name that Markdown would read as markup (a tag, asterisks, an
    underscore at a word's edge) is escaped in CREDITS.md, and kept as it is in metadata.csv."""
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(SALICARIA, "Lythrum salicaria", parent_id=1)
    name = "<Jane> *JD* _x_ [a](b) jo_doe"
    inat.add_observation(1001, SALICARIA, photos=[{"id": 10010, "license_code": "cc-by"}], user_login=name)
    data, out = tmp_path / "data", tmp_path / "dataset"
    write_taxa(data, TAXA[:1])
    fetch(inat, data)

    assert export(inat, data, out).exit_code == 0

    credits = (out / "CREDITS.md").read_text(encoding="utf-8")
    assert (
        "| 10010 | Lythrum salicaria | (c) \\<Jane\\> \\*JD\\* \\_x\\_ \\[a\\](b) jo_doe, some rights "
        "reserved (CC BY) | cc-by | https://www.inaturalist.org/observations/1001 |"
    ) in credits
    (row,) = read_csv(out / "metadata.csv")
    assert row["attribution"] == f"(c) {name}, some rights reserved (CC BY)" and row["observer"] == name


def test_a_photos_csv_with_fewer_columns(
    fetched: tuple[InatServer, Path], hf: ModuleType, tmp_path: Path
) -> None:
    """photos.csv as an older or hand-made manifest may be: the columns the export needs are
    named when missing; the others are carried when present."""
    inat, data = fetched
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    rows = manifest(copy)
    optional = ("observed_taxon_id", "observed_taxon_name", "quality_grade", "latitude", "longitude", "bytes")

    def write(columns: list[str]) -> None:
        with (copy / "photos.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)

    write([c for c in rows[0] if c not in optional])
    out = tmp_path / "dataset"
    assert export(inat, copy, out, "--split", SPLIT).exit_code == 0
    dataset = load(hf, out)
    assert dataset["train"].column_names == ["image", "label", *(c for c in rows[0] if c not in optional)]
    assert sum(len(split) for split in dataset.values()) == len(rows)
    write([c for c in rows[0] if c not in ("observation_url", "observer")])
    result = export(inat, copy, tmp_path / "other", "--split", SPLIT)
    assert result.exit_code == 1 and result.stderr == (
        f"Error: {copy / 'photos.csv'} has no column observer, observation_url; "
        "run `inatdl photos fetch` to rewrite it\n"
    )


def test_a_taxon_name_with_quotes_commas_and_slashes(
    inat: InatServer, hf: ModuleType, tmp_path: Path
) -> None:
    """The label is the name as iNaturalist writes it, through metadata.csv's quoting; the
    folder is the name made safe, as in the data dir."""
    name = 'Salix × "odd", a/b'
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(80001, name, parent_id=1)
    add_observations(inat, 80001, 1000, 40)
    data, out = tmp_path / "data", tmp_path / "dataset"
    write_taxa(data, [(80001, name)])
    fetch(inat, data)

    assert export(inat, data, out, "--split", SPLIT).exit_code == 0

    dataset = load(hf, out)
    assert {label for split in dataset.values() for label in split["label"]} == {name}
    assert sum(len(split) for split in dataset.values()) == len(manifest(data))
    assert {p.name for p in out.glob("*/*") if p.is_dir()} == {"Salix_×__odd_,_a_b"}
    assert f"| {name} |" in (out / "CREDITS.md").read_text(encoding="utf-8")


def test_pandas_is_loaded_by_export_only(fetched: tuple[InatServer, Path], tmp_path: Path) -> None:
    inat, data = fetched
    script = (
        "import sys\n"
        "from inatdl.cli import cli\n"
        "try:\n"
        "    cli.main(sys.argv[1:], prog_name='inatdl')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('pandas' in sys.modules, file=sys.stderr)\n"
    )
    base = [
        sys.executable,
        "-c",
        script,
        "--data-dir",
        str(data),
        "--api-url",
        inat.api_url,
        "--api-rate",
        "1000",
    ]
    fetch_run = subprocess.run([*base, "photos", "fetch", "--size", "square"], capture_output=True, text=True)
    assert fetch_run.stderr.strip().splitlines()[-1] == "False", fetch_run.stderr
    export_run = subprocess.run(
        [*base, "dataset", "export", str(tmp_path / "o")], capture_output=True, text=True
    )
    assert export_run.stderr.strip().splitlines()[-1] == "True", export_run.stderr


def test_several_sizes_need_size(inat: InatServer, tmp_path: Path) -> None:
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(SALICARIA, "Lythrum salicaria", parent_id=1)
    add_observations(inat, SALICARIA, 1000, 5)
    data = tmp_path / "data"
    write_taxa(data, TAXA[:1])
    fetch(inat, data, "square")
    fetch(inat, data, "small")
    result = export(inat, data, tmp_path / "out")
    assert result.exit_code == 1 and not (tmp_path / "out").exists()
    assert result.stderr.strip() == (
        "Error: the data dir holds photos of several sizes (square, small); choose one with --size"
    )
    result = export(inat, data, tmp_path / "out", "--size", "large")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: the data dir holds no large photos, only square, small; choose one with --size"
    )
    result = export(inat, data, tmp_path / "out", "--size", "small")
    assert result.exit_code == 0 and "(small)" in result.output
    assert {r["size"] for r in read_csv(tmp_path / "out/metadata.csv")} == {"small"}


def test_errors_are_one_line_and_change_nothing(inat: InatServer, tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    result = export(inat, data, out)
    assert result.exit_code == 1 and not data.exists() and not out.exists()
    assert result.stderr == (
        f"Error: no photos in the data dir {data} (no photos.csv): run `inatdl photos fetch` first, "
        "or point --data-dir at the data dir\n"
    )
    data.mkdir()
    (data / "photos.csv").write_text("photo_id,observation_id,taxon_name,size,path,license_code,"
                                     "attribution,observer,observation_url\n")  # fmt: skip
    result = export(inat, data, out)
    assert result.exit_code == 1 and "photos.csv is empty" in result.stderr and not out.exists()

    build_world(inat)
    write_taxa(data, TAXA)
    fetch(inat, data)
    (data / "photos").rename(tmp_path / "moved")  # photos.csv without its photos
    result = export(inat, data, out)
    assert result.exit_code == 1 and not out.exists()
    assert result.stderr == (
        f"Error: none of the {len(manifest(data))} square photos in photos.csv is in {data}: run "
        "`inatdl photos fetch` to download them again, or point --data-dir at the data dir\n"
    )
    (tmp_path / "moved").rename(data / "photos")
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    result = export(inat, data, a_file)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {a_file} is a file, not a folder; choose a folder for the dataset\n"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    result = export(inat, data, foreign)
    assert result.exit_code == 1 and result.stderr == (
        f"Error: {foreign} is not empty and was not made by `inatdl dataset export`; "
        "choose a new or empty folder\n"
    )
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    result = export(inat, data, data / "export")
    assert result.exit_code == 1 and "which export never changes" in result.stderr
    for split, problem in (
        ("train=0.8,validation=0.3", "the shares add up to 1.1, not 1"),
        ("train=0.5,test=0.4", "the shares add up to 0.9, not 1"),
        ("train=0.8,dev=0.2", "'dev' is not a split name; use train, validation, test"),
        ("train=1,train=0", "'train' is given twice"),
        ("train=x", "'x' is not a number (the share of train)"),
    ):
        result = export(inat, data, out, "--split", split)
        assert result.exit_code == 2
        assert f"Error: Invalid value for '--split': '{split}': {problem}" in result.stderr
    assert not out.exists()
    assert a_file.read_text() == "mine"


def test_a_file_a_user_added_to_the_export_is_left_alone(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    inat, data = fetched
    out = tmp_path / "dataset"
    assert export(inat, data, out, "--split", SPLIT).exit_code == 0
    assert list(out.glob("*/Quercus_robur"))
    (out / "train" / "notes.txt").write_text("mine")
    result = export(inat, data, out, "--split", SPLIT, "--min-per-taxon", "10")  # Quercus robur goes
    assert (
        result.exit_code == 0
        and "Left out, fewer than --min-per-taxon 10 photos: Quercus robur" in result.output
    )
    assert not list(out.glob("*/Quercus_robur"))
    assert (out / "train" / "notes.txt").read_text() == "mine"


def test_other_splits_into_an_earlier_export_are_refused(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    """Updating an export with another seed, shares, grouping, or with/without splits would
    move photos from test to train under a model trained on the old splits: refused, and
    the folder left as it was."""
    inat, data = fetched
    out = tmp_path / "dataset"
    assert export(inat, data, out, "--split", SPLIT).exit_code == 0
    before = snapshot(out)
    was = f"{out} was exported with --split {SPLIT} --group-by observation --seed 0, not "
    for args, now in (
        (["--split", SPLIT, "--seed", "1"], f"with --split {SPLIT} --group-by observation --seed 1"),
        (
            ["--split", "train=0.8,test=0.2"],
            "with --split train=0.8,test=0.2 --group-by observation --seed 0",
        ),
        (["--split", SPLIT, "--group-by", "observer"], f"with --split {SPLIT} --group-by observer --seed 0"),
        ([], "without --split"),
    ):
        result = export(inat, data, out, *args)
        assert result.exit_code == 1, result.output
        assert result.stderr == (
            f"Error: {was}{now}; updating it would move photos from one split to another: "
            f"export into a new folder, or delete {out} first\n"
        )
        assert snapshot(out) == before
    # The same splits with other limits, or a seed without splits, are an update.
    assert export(inat, data, out, "--split", "train=0.80,validation=0.1,test=0.10").exit_code == 0
    flat = tmp_path / "flat"
    assert export(inat, data, flat).exit_code == 0
    assert export(inat, data, flat, "--seed", "5", "--max-per-taxon", "50").exit_code == 0


def test_split_rules() -> None:
    splits = parse_splits(" train=0.7, test=0.3")
    assert splits == (("train", 0.7), ("test", 0.3))
    assert parse_splits("train=0.8,validation=0.1,test=0.1")[1] == ("validation", 0.1)
    assert [split_for(p, splits) for p in (0.0, 0.69, 0.7, 0.999)] == ["train", "train", "test", "test"]
    assert unit_hash(0, "observation:1") == unit_hash(0, "observation:1") != unit_hash(1, "observation:1")
    digest = hashlib.sha256(b"0\x00observation:1").digest()  # the same on every machine and Python
    assert unit_hash(0, "observation:1") == int.from_bytes(digest[:8], "big") / 2**64
    positions = [unit_hash(3, f"observation:{i}") for i in range(20_000)]
    assert all(0 <= p < 1 for p in positions) and abs(sum(p < 0.1 for p in positions) / 20_000 - 0.1) < 0.01
    for bad in ("train", "train=0", "train=1.5", "=1", "train=nan"):
        with pytest.raises(ValueError):
            parse_splits(bad)


def test_an_export_cut_short_leaves_nothing_the_next_one_forgets(
    fetched: tuple[InatServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inat, data = fetched
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    out, fresh = tmp_path / "dataset", tmp_path / "fresh"
    real_link, linked = os.link, []

    def link_then_stop(source: Any, target: Any) -> None:
        if len(linked) == 50:
            raise KeyboardInterrupt
        real_link(source, target)
        linked.append(Path(source))

    monkeypatch.setattr(os, "link", link_then_stop)
    result = export(inat, copy, out, "--split", SPLIT)
    assert result.exit_code == 130 and len(linked) == 50
    monkeypatch.setattr(os, "link", real_link)
    linked[0].unlink()  # a photo exported by the cut run leaves the data dir before the next

    assert export(inat, copy, out, "--split", SPLIT).exit_code == 0
    assert export(inat, copy, fresh, "--split", SPLIT).exit_code == 0
    ours, theirs = snapshot(out), snapshot(fresh)
    assert ours.pop("README.md") and theirs.pop("README.md")
    assert ours == theirs and not any(name.endswith(linked[0].name) for name in ours)


def photos_unlisted(inat: InatServer, tmp_path: Path) -> tuple[Path, Path, int]:
    """A data dir whose photos.csv lists only its first fetch's photos (as a fetch leaves it
    while it runs, or killed before it rewrites photos.csv), OUT_DIR, and how many photos
    on disk are not listed."""
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(SALICARIA, "Lythrum salicaria", parent_id=1)
    write_taxa(tmp_path / "data", [(SALICARIA, "Lythrum salicaria")])
    add_observations(inat, SALICARIA, 1000, 6)
    data, out = tmp_path / "data", tmp_path / "out"
    fetch(inat, data)
    listed = (data / "photos.csv").read_bytes()
    add_observations(inat, SALICARIA, 4000, 6)
    fetch(inat, data)
    unlisted = len(manifest(data)) - len(listed.splitlines()) + 1
    (data / "photos.csv").write_bytes(listed)
    return data, out, unlisted


def test_photos_a_killed_fetch_did_not_list_are_told_then_exported(inat: InatServer, tmp_path: Path) -> None:
    """photos.csv is rewritten at the end of a fetch: after a SIGKILL the photos downloaded
    since are on disk and in the state, not in photos.csv. The export says so (never silently
    short), and the next fetch lists them without downloading them again."""
    data, out, unlisted = photos_unlisted(inat, tmp_path)  # as a kill before the rewrite leaves them
    folder = data / "photos" / "Lythrum_salicaria"
    (folder / "99_square.jpg.part").write_bytes(b"cut short")  # a body kept for a Range request

    result = export(inat, data, out)

    assert result.exit_code == 0, result.output
    assert f"Left out: {unlisted} photos downloaded by a fetch that was stopped" in result.output
    inat.clear_requests()
    fetch(inat, data)
    assert inat.bytes_sent() == 0
    result = export(inat, data, out)
    assert "stopped before" not in result.output
    assert len(read_csv(out / "metadata.csv")) == len(manifest(data)) == len(list(folder.glob("*_square.*g")))


def test_an_export_while_a_fetch_runs_says_so_in_one_line(inat: InatServer, tmp_path: Path) -> None:
    """It said the photos the running fetch had downloaded were those of "a fetch that was
    stopped" and to run `photos fetch` again: one line says a fetch runs, and to export when
    it ends. The lock is only looked at: the data dir is left as it was."""
    data, out, since = photos_unlisted(inat, tmp_path)  # as while the fetch runs: written at its end
    with DataDirLock(data):  # a fetch holds it while it runs
        before = snapshot(data)
        result = export(inat, data, out)
        assert snapshot(data) == before
    assert result.exit_code == 0, result.output
    told = [line for line in result.stdout.splitlines() if "photos fetch" in line or "Left out" in line]
    assert told == [
        f"A `photos fetch` is running in this data dir (pid {os.getpid()}): exported the photos of "
        f"photos.csv as it last wrote it, leaving out {since} photos downloaded since; export again when "
        "it ends."
    ]
    assert "running" not in export(inat, data, tmp_path / "again").stdout  # the fetch has ended


def test_an_out_dir_without_permission_names_out_dir_not_the_data_dir(
    fetched: tuple[InatServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The advice of a write refused in OUT_DIR is about OUT_DIR: --data-dir is only read."""
    inat, data = fetched
    out = tmp_path / "out"
    real_mkdir = Path.mkdir

    def refused(self: Path, *args: Any, **kwargs: Any) -> None:
        if self == out:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refused)
    result = export(inat, data, out)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no permission to write {out}; check its permissions or export into another folder\n"
    )
