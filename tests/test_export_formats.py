"""`dataset export --format webdataset|parquet`: the layout checked as a reader sees it,
with tarfile and pyarrow (the real loaders are in test_export_loaders.py): every photo once,
its bytes as downloaded, the same splits and labels as the imagefolder, byte-identical
shards on a second export, updates that rewrite only changed shards, and the refusals."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow.parquet as pq
import pytest
import yaml
from inat_server import InatServer
from test_export import (
    SPLIT,
    TAXA,
    add_observations,
    build_world,
    export,
    fetch,
    fetched_world,
    read_csv,
    snapshot,
)
from world import manifest, write_taxa

import inatdl.export
from inatdl.export.writers import _shards
from inatdl.export.writers import parquet as parquet_writer

SHARD = "100kB"  # about 40 square photos a shard: several shards a split
LABELS = sorted(name for _, name in TAXA)
#: Shards are written by forked worker processes on Linux only; elsewhere by the export itself.
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers fork on Linux only")


#: The export's own choice, before the fixture below replaces it.
machine_workers = _shards.shard_workers


@pytest.fixture(autouse=True)
def three_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards written by three worker processes, whatever the machine's cores (a test
    that wants one process sets it)."""
    monkeypatch.setattr(_shards, "shard_workers", lambda: 3)


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InatServer, Path]]:
    yield from fetched_world(tmp_path_factory)


def tar_samples(out: Path) -> dict[str, dict[str, Any]]:
    """Every sample of every tar: key → split, shard, and its members' bytes by extension."""
    samples: dict[str, dict[str, Any]] = {}
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as tar:
            names = tar.getnames()
            assert names == sorted(names, key=lambda n: (int(n.split(".")[0]), n))  # sorted, by photo id
            for member in tar.getmembers():
                assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (0, 0, 0, "", "")
                assert member.isfile() and member.mode == 0o644
                key, extension = member.name.split(".", 1)
                sample = samples.setdefault(key, {"split": shard.name.split("-")[0], "shard": shard.name})
                assert sample["shard"] == shard.name  # a sample never spans two shards
                handle = tar.extractfile(member)
                assert handle is not None
                sample[extension] = handle.read()
    return samples


def parquet_rows(out: Path) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for path in sorted((out / "data").glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            rows[str(row["photo_id"])] = {**row, "split": path.name.split("-")[0], "file": path.name}
    return rows


def imagefolder_splits(out: Path) -> dict[str, str]:
    return {row["photo_id"]: p.parent.name for p in out.glob("*/metadata.csv") for row in read_csv(p)}


def test_webdataset_shards_hold_every_photo_as_downloaded(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    inat, data = fetched
    before = snapshot(data)
    out, folders = tmp_path / "wds", tmp_path / "folders"

    result = export(inat, data, out, "--split", SPLIT, "--format", "webdataset", "--shard-size", SHARD)

    assert result.exit_code == 0, result.output
    assert snapshot(data) == before
    assert export(inat, data, folders, "--split", SPLIT).exit_code == 0
    assert (out / "labels.txt").read_text(encoding="utf-8") == "".join(f"{label}\n" for label in LABELS)
    rows = {row["photo_id"]: row for row in manifest(data)}
    samples = tar_samples(out)
    assert sorted(samples) == sorted(rows)  # every photo exactly once
    assert {key: s["split"] for key, s in samples.items()} == imagefolder_splits(folders)
    columns = list(next(iter(rows.values())))
    for key, sample in samples.items():
        row = rows[key]
        extension = row["path"].rsplit(".", 1)[1]
        assert set(sample) == {"split", "shard", extension, "cls", "json"}
        assert sample[extension] == (data / row["path"]).read_bytes()  # never re-encoded
        assert LABELS[int(sample["cls"])] == row["taxon_name"]
        obscured = {"true": True, "false": False, "": None}[row["coordinates_obscured"]]  # JSON's, not text
        assert json.loads(sample["json"]) == {
            **row,
            "coordinates_obscured": obscured,
            "label": row["taxon_name"],
        }
        assert list(json.loads(sample["json"])) == [*columns, "label"]
    assert {s["png"] is not None for s in samples.values() if "png" in s} == {True}  # pngs among jpgs
    shards = sorted(p.name for p in out.glob("*.tar"))
    for split in ("train", "validation", "test"):
        mine = [name for name in shards if name.startswith(f"{split}-")]
        assert mine == [f"{split}-{i:05d}.tar" for i in range(len(mine))]
    assert len([name for name in shards if name.startswith("train-")]) > 3
    assert all((out / name).stat().st_size <= 100_000 for name in shards)
    assert "515 added (" in result.output or "added (" in result.output


def test_webdataset_without_split_is_train(fetched: tuple[InatServer, Path], tmp_path: Path) -> None:
    inat, data = fetched
    out = tmp_path / "wds"
    assert export(inat, data, out, "--format", "webdataset").exit_code == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "CREDITS.md", "README.md", "croissant.json", "labels.txt", "train-00000.tar",
    ]  # fmt: skip
    assert len(tar_samples(out)) == len(manifest(data))


def test_the_same_export_twice_gives_byte_identical_shards(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    inat, data = fetched
    for format_ in ("webdataset", "parquet"):
        first, second = tmp_path / f"{format_}-1", tmp_path / f"{format_}-2"
        for out in (first, second):
            result = export(inat, data, out, "--split", SPLIT, "--format", format_, "--shard-size", SHARD)
            assert result.exit_code == 0, result.output
        ours, theirs = snapshot(first), snapshot(second)
        assert ours.pop("README.md") and theirs.pop("README.md")  # the card names its folder
        assert ours == theirs and len(ours) > 10


def test_parquet_files_hold_the_images_and_the_photos_csv_columns(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    inat, data = fetched
    out, folders = tmp_path / "parquet", tmp_path / "folders"

    result = export(inat, data, out, "--split", SPLIT, "--format", "parquet", "--shard-size", SHARD)

    assert result.exit_code == 0, result.output
    assert export(inat, data, folders, "--split", SPLIT).exit_code == 0
    rows = {row["photo_id"]: row for row in manifest(data)}
    exported = parquet_rows(out)
    assert sorted(exported) == sorted(rows)
    assert {pid: row["split"] for pid, row in exported.items()} == imagefolder_splits(folders)
    for pid, row in exported.items():
        photo = rows[pid]
        assert row["image"] == {
            "bytes": (data / photo["path"]).read_bytes(),
            "path": photo["path"].rsplit("/", 1)[1],
        }
        assert LABELS[row["label"]] == photo["taxon_name"]
        assert (row["observation_id"], row["attribution"], row["license_code"]) == (
            int(photo["observation_id"]), photo["attribution"], photo["license_code"]
        )  # fmt: skip
        assert row["latitude"] == (float(photo["latitude"]) if photo["latitude"] else None)
    files = sorted((out / "data").glob("*.parquet"))
    for split in ("train", "validation", "test"):
        mine = [p.name for p in files if p.name.startswith(f"{split}-")]
        assert mine == [f"{split}-{i:05d}-of-{len(mine):05d}.parquet" for i in range(len(mine))]
    for path in files:
        assert path.stat().st_size <= 100_000
        parquet = pq.ParquetFile(path)
        assert all(parquet.metadata.row_group(i).num_rows <= 100 for i in range(parquet.num_row_groups))
        features = json.loads(parquet.schema_arrow.metadata[b"huggingface"])["info"]["features"]
        assert features["label"] == {"names": LABELS, "_type": "ClassLabel"}  # the same in every split
        assert features["image"] == {"_type": "Image"}
        assert parquet.schema_arrow.names == ["image", "label", *next(iter(rows.values()))]


@pytest.mark.parametrize(("least", "image_bytes", "most"), [(3, 1, 1000), (3, 10**9, 1000), (3, 10**9, 5)])
def test_parquet_row_groups_hold_a_least_of_photos_and_grow_to_a_bound_of_image_bytes(
    fetched: tuple[InatServer, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    least: int,
    image_bytes: int,
    most: int,
) -> None:
    inat, data = fetched
    monkeypatch.setattr(parquet_writer, "ROW_GROUP_PHOTOS", least)
    monkeypatch.setattr(parquet_writer, "ROW_GROUP_BYTES", image_bytes)
    monkeypatch.setattr(parquet_writer, "ROW_GROUP_MOST_PHOTOS", most)
    out = tmp_path / "parquet"

    assert export(inat, data, out, "--split", SPLIT, "--format", "parquet").exit_code == 0

    for path in sorted((out / "data").glob("*.parquet")):
        metadata = pq.ParquetFile(path).metadata
        groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        if image_bytes == 1:  # closed as soon as it holds the least
            assert groups[:-1] == [least] * (len(groups) - 1) and 0 < groups[-1] <= least
        elif most == 5:  # never reaches the bytes: closed at the most photos
            assert groups[:-1] == [most] * (len(groups) - 1) and 0 < groups[-1] <= most
        else:  # never reaches the bound: one group a file
            assert groups == [metadata.num_rows]
    assert sorted(parquet_rows(out)) == sorted(row["photo_id"] for row in manifest(data))


def test_an_update_rewrites_parquet_files_of_an_older_layout_whole(
    fetched: tuple[InatServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inat, data = fetched
    out, fresh = tmp_path / "parquet", tmp_path / "fresh"
    args = ["--split", SPLIT, "--format", "parquet", "--shard-size", SHARD]
    monkeypatch.setattr(parquet_writer.ParquetWriter, "version", 2)  # row groups as large as 4 MB of images
    monkeypatch.setattr(parquet_writer, "ROW_GROUP_MOST_PHOTOS", 3)  # (a layout of its own, here)
    assert export(inat, data, out, *args).exit_code == 0
    monkeypatch.undo()

    result = export(inat, data, out, *args)

    files = sorted(p.name for p in (out / "data").glob("*.parquet"))
    assert result.exit_code == 0 and f"{len(files)} files written, 0 unchanged" in result.output
    assert export(inat, data, fresh, *args).exit_code == 0
    for name in files:  # as if exported afresh
        assert (out / "data" / name).read_bytes() == (fresh / "data" / name).read_bytes()


def test_an_update_rewrites_only_the_shards_whose_photos_changed(inat: InatServer, tmp_path: Path) -> None:
    build_world(inat)
    data = tmp_path / "data"
    write_taxa(data, TAXA)
    fetch(inat, data)
    for format_ in ("webdataset", "parquet"):
        out = tmp_path / format_
        args = ["--split", SPLIT, "--format", format_, "--shard-size", SHARD]
        assert export(inat, data, out, *args).exit_code == 0
        written = {p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.suffix in (".tar", ".parquet")}
        again = export(inat, data, out, *args)
        assert again.exit_code == 0 and f"0 files written, {len(written)} unchanged" in again.output
        assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.name in written} == written
    add_observations(inat, 61299, 9000, 20)  # new observations: new, higher photo ids
    fetch(inat, data)
    gone = manifest(data)[0]
    (data / gone["path"]).unlink()
    for format_ in ("webdataset", "parquet"):
        out, fresh = tmp_path / format_, tmp_path / f"{format_}-fresh"
        args = ["--split", SPLIT, "--format", format_, "--shard-size", SHARD]
        before = {p.name: p.read_bytes() for p in out.rglob("*") if p.suffix in (".tar", ".parquet")}
        result = export(inat, data, out, *args)
        assert result.exit_code == 0, result.output
        assert " 1 removed" in result.output and "1 photo in photos.csv whose file is not" in result.output
        assert export(inat, data, fresh, *args).exit_code == 0
        ours, theirs = snapshot(out), snapshot(fresh)
        assert ours.pop("README.md") and theirs.pop("README.md")
        assert ours == theirs  # as if exported afresh
        now = {p.name: p.read_bytes() for p in out.rglob("*") if p.suffix in (".tar", ".parquet")}
        unchanged = [name for name in now if now[name] in before.values()]  # kept, or renamed (-of-)
        assert unchanged and len(unchanged) < len(now)
        assert f"{len(now) - len(unchanged)} files written, {len(unchanged)} unchanged" in result.output


def test_an_out_dir_of_another_format_is_refused(fetched: tuple[InatServer, Path], tmp_path: Path) -> None:
    inat, data = fetched
    out = tmp_path / "dataset"
    assert export(inat, data, out, "--split", SPLIT).exit_code == 0
    before = snapshot(out)
    for format_ in ("webdataset", "parquet"):
        result = export(inat, data, out, "--split", SPLIT, "--format", format_)
        assert result.exit_code == 1 and result.stderr == (
            f"Error: {out} holds an imagefolder export, not {format_}; export {format_} into a new "
            f"folder, or delete {out} first\n"
        )
    assert snapshot(out) == before
    shards = tmp_path / "shards"
    assert export(inat, data, shards, "--format", "parquet").exit_code == 0
    result = export(inat, data, shards, "--format", "webdataset")
    assert result.exit_code == 1 and "holds a parquet export, not webdataset" in result.stderr


@pytest.mark.parametrize(
    ("size", "problem"),
    [
        ("500", "'500' has no unit; write it like 500MB or 1GB"),
        ("12 parsecs", "'12 parsecs' is not a size"),
        ("0MB", "'0MB' must be more than zero bytes"),
    ],
)
def test_a_shard_size_without_a_unit_is_a_usage_error(
    fetched: tuple[InatServer, Path], tmp_path: Path, size: str, problem: str
) -> None:
    inat, data = fetched
    result = export(inat, data, tmp_path / "out", "--format", "webdataset", "--shard-size", size)
    assert result.exit_code == 2 and f"Invalid value for '--shard-size': {problem}" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_shard_size_below_one_photo_is_a_usage_error(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    inat, data = fetched
    for format_ in ("webdataset", "parquet"):
        result = export(inat, data, tmp_path / format_, "--format", format_, "--shard-size", "2kB")
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("Error: --shard-size 2.0 kB is smaller than photo ")
        assert result.stderr.endswith("; give a larger --shard-size, such as the default 500MB\n")
        assert not (tmp_path / format_).exists()


class FullDisk:
    """A file whose disk fills after ``room`` bytes."""

    def __init__(self, path: Path, room: int) -> None:
        self.handle: BinaryIO = path.open("wb")
        self.room = room

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            self.handle.write(bytes(data)[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.handle.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    def __enter__(self) -> FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


def full_disk_in(victim: str) -> Callable[[Path], Any]:
    """``open_temporary`` as on a disk that fills 10 kB into the shard named ``victim``."""

    def open_temporary(path: Path) -> FullDisk:
        return FullDisk(path, 10_000 if victim in path.name else 10**9)

    return open_temporary


def shard_files(out: Path) -> dict[str, str]:
    return {name: digest for name, digest in snapshot(out).items() if name.endswith((".tar", ".parquet"))}


def exported_whole(
    inat: InatServer, data: Path, tmp_path: Path, format_: str
) -> tuple[Path, tuple[str, ...], dict[str, str]]:
    """OUT_DIR for a test to cut short, the export's arguments, and the shards the same
    export writes when nothing goes wrong (in a folder of its own)."""
    args = ("--split", SPLIT, "--format", format_, "--shard-size", SHARD)
    assert export(inat, data, tmp_path / "fresh", *args).exit_code == 0
    return tmp_path / "out", args, shard_files(tmp_path / "fresh")


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("format_", ["webdataset", "parquet"])
def test_a_disk_that_fills_mid_shard_leaves_no_truncated_shard(
    fetched: tuple[InatServer, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    format_: str,
    workers: int,
) -> None:
    inat, data = fetched
    out, args, whole = exported_whole(inat, data, tmp_path, format_)
    monkeypatch.setattr(_shards, "shard_workers", lambda: workers)
    monkeypatch.setattr(_shards, "open_temporary", full_disk_in("train-00001"))

    result = export(inat, data, out, *args)

    assert result.exit_code == 1, result.output
    (victim,) = [name for name in whole if "train-00001" in name]
    assert result.stderr == (
        f"Error: the disk holding {out / victim} is full; free some space and run the same command again "
        "(nothing done so far is lost)\n"
    )
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]
    present = shard_files(out)
    assert present and victim not in present
    assert {name: whole[name] for name in present} == present  # whole ones only
    monkeypatch.undo()
    again = export(inat, data, out, *args)
    assert again.exit_code == 0 and f", {len(present)} unchanged)" in again.output
    assert shard_files(out) == whole


def test_shards_are_the_same_bytes_however_many_processes_write_them(
    fetched: tuple[InatServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inat, data = fetched
    for format_ in ("webdataset", "parquet"):
        made = []
        for workers in (1, 4):
            monkeypatch.setattr(_shards, "shard_workers", lambda workers=workers: workers)
            out = tmp_path / f"{format_}-{workers}"
            result = export(inat, data, out, "--split", SPLIT, "--format", format_, "--shard-size", SHARD)
            assert result.exit_code == 0, result.output
            made.append(snapshot(out))
            assert made[-1].pop("README.md")  # the card names its folder
            again = export(inat, data, out, "--split", SPLIT, "--format", format_, "--shard-size", SHARD)
            assert again.exit_code == 0 and "(0 files written, " in again.output  # every shard recorded
        assert made[0] == made[1] and len(shard_files(tmp_path / f"{format_}-4")) > 4


#: `inatdl` whose worker writing the shard named in INATDL_TEST_HOLD stops once the shard's
#: temporary file is open, after writing its pid to INATDL_TEST_HELD: the export is then
#: surely midway, with a worker's .part file on disk.
HOLDING = """
import os, signal, sys
from pathlib import Path
from inatdl.export.writers import _shards

opened = _shards.open_temporary

def held(path):
    handle = opened(path)
    if os.environ["INATDL_TEST_HOLD"] in path.name:
        Path(os.environ["INATDL_TEST_HELD"]).write_text(str(os.getpid()))
        signal.pause()
    return handle

_shards.open_temporary = held
_shards.shard_workers = lambda: 3
from inatdl.__main__ import main
main()
"""


def held_export(data: Path, out: Path, held: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    """The export started in a process of its own, returned once its worker is held."""
    env = {**os.environ, "INATDL_TEST_HOLD": "train-00002", "INATDL_TEST_HELD": str(held)}
    command = [sys.executable, "-c", HOLDING, "--data-dir", str(data), "dataset", "export", str(out), *args]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(6000):  # a minute at most
        if held.is_file() and held.read_text():
            return process, int(held.read_text())
        if process.poll() is not None:
            raise AssertionError(process.communicate())
        time.sleep(0.01)
    process.kill()
    raise AssertionError("the export never reached its held shard")


@linux_only
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_a_stop_while_workers_write_shards_leaves_only_whole_shards(
    fetched: tuple[InatServer, Path], tmp_path: Path, stop: signal.Signals
) -> None:
    inat, data = fetched
    out, args, whole = exported_whole(inat, data, tmp_path, "webdataset")
    process, worker = held_export(data, out, tmp_path / "held", *args)
    assert [p.name for p in out.glob(".*.part")] and Path(f"/proc/{worker}").exists()

    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130
    assert stderr == "Error: interrupted; the same command resumes\n"
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]
    assert not _alive(worker)
    present = shard_files(out)
    assert {name: whole[name] for name in present} == present  # whole ones only
    again = export(inat, data, out, *args)
    assert again.exit_code == 0 and shard_files(out) == whole


COUNTING = """
import sys
from inatdl.export.writers import _shards

forking = _shards._write_in_workers

def counted(writer, shards, workers, meanwhile):
    print(f"{workers} workers", file=sys.stderr)
    return forking(writer, shards, workers, meanwhile)

_shards._write_in_workers = counted
from inatdl.__main__ import main
main()
"""


@linux_only
@pytest.mark.skipif(len(getattr(os, "sched_getaffinity", lambda _: [0])(0)) < 2, reason="one core")
def test_the_command_writes_its_shards_with_a_worker_a_core(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    _, data = fetched
    command = [sys.executable, "-c", COUNTING, "--data-dir", str(data), "dataset", "export", str(tmp_path)]
    args = ["--split", SPLIT, "--format", "webdataset", "--shard-size", SHARD]
    done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    cores = min(len(os.sched_getaffinity(0)), _shards.MOST_WORKERS)
    assert done.stderr == f"{cores} workers\n"


@linux_only
def test_a_ctrl_c_while_credits_are_written_keeps_the_finished_shards(
    fetched: tuple[InatServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CREDITS.md is written while the workers write the shards: a Ctrl-C then still
    records the shards they finished, so the next run keeps them."""
    inat, data = fetched
    out = tmp_path / "out"
    args = ("--split", SPLIT, "--format", "webdataset", "--shard-size", SHARD)

    def interrupted_credits(handle: Any, selection: Any) -> None:
        for _ in range(3000):  # until two shards are whole (a minute at most)
            if len(list(out.glob("*.tar"))) >= 2:
                raise KeyboardInterrupt
            time.sleep(0.02)
        raise AssertionError("no shard was written")

    monkeypatch.setattr(inatdl.export, "write_credits", interrupted_credits)
    result = export(inat, data, out, *args)
    assert result.exit_code == 130, result.output
    present = shard_files(out)
    assert not [p for p in out.rglob("*") if p.name.endswith(".part") and ".tar." in p.name]
    monkeypatch.undo()

    again = export(inat, data, out, *args)

    assert again.exit_code == 0, again.output
    unchanged = int(again.output.split(" unchanged)")[0].rsplit(" ", 1)[1])
    assert 2 <= unchanged <= len(present)


@linux_only
def test_workers_start_with_the_stopping_signals_held(
    fetched: tuple[InatServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker is forked with Ctrl-C and SIGTERM held until its own handlers are set: one
    arriving as it starts would otherwise meet the export's (a traceback of its own)."""
    inat, data = fetched
    unheld = tmp_path / "unheld"
    start = _shards._start_worker

    def checked_start(parent: int) -> None:
        if not signal.pthread_sigmask(signal.SIG_BLOCK, []) >= _shards._STOPS:
            unheld.write_text(str(os.getpid()))
        start(parent)

    monkeypatch.setattr(_shards, "_start_worker", checked_start)
    args = ("--split", SPLIT, "--format", "webdataset", "--shard-size", SHARD)
    result = export(inat, data, tmp_path / "out", *args)

    assert result.exit_code == 0 and not unheld.exists()
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the export's own, let through


def test_a_program_with_other_threads_writes_its_shards_itself() -> None:
    """A fork copies only the thread that forks: the export forks from one thread alone."""
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        assert machine_workers() == 1
    finally:
        release.set()
        thread.join()


def test_a_ctrl_c_raised_as_a_state_file_appears_leaves_no_temporary_file(
    fetched: tuple[InatServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python raises a signal's KeyboardInterrupt when a system call returns: here, the one
    that made the temporary file of the export's state."""
    inat, data = fetched
    out = tmp_path / "out"
    real_open = os.open

    def interrupted_open(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        descriptor = real_open(path, flags, mode, **kwargs)
        if str(path).endswith(".part") and ".inatdl-export.json." in str(path):
            os.close(descriptor)
            raise KeyboardInterrupt
        return descriptor

    monkeypatch.setattr(os, "open", interrupted_open)
    result = export(inat, data, out, "--split", SPLIT, "--format", "webdataset", "--shard-size", SHARD)

    assert result.exit_code == 130 and result.stderr == "Error: interrupted; the same command resumes\n"
    assert out.is_dir() and not [p.name for p in out.iterdir() if p.name.endswith(".part")]


@linux_only
def test_an_export_killed_outright_leaves_no_worker_running(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    inat, data = fetched
    out = tmp_path / "out"
    args = ("--split", SPLIT, "--format", "webdataset", "--shard-size", SHARD)
    process, worker = held_export(data, out, tmp_path / "held", *args)

    process.kill()
    process.communicate(timeout=60)

    for _ in range(6000):
        if not _alive(worker):
            break
        time.sleep(0.01)
    assert not _alive(worker)
    assert export(inat, data, out, *args).exit_code == 0
    assert not list(out.glob(".*.tar.part"))  # the held shard's, written whole under the same name


@linux_only
def test_a_worker_that_dies_is_one_line(
    fetched: tuple[InatServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inat, data = fetched
    out, args, whole = exported_whole(inat, data, tmp_path, "parquet")
    opened = _shards.open_temporary

    def killed_in_the_third_shard(path: Path) -> Any:
        handle = opened(path)
        if "train-00002" in path.name:
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's out-of-memory killer would
        return handle

    monkeypatch.setattr(_shards, "shard_workers", lambda: 3)
    monkeypatch.setattr(_shards, "open_temporary", killed_in_the_third_shard)
    result = export(inat, data, out, *args)

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: a process writing the shards ended without finishing; run the same command again "
        "(the finished shards are kept)\n"
    )
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]
    monkeypatch.undo()
    assert export(inat, data, out, *args).exit_code == 0 and shard_files(out) == whole


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie left for its new parent to reap does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_the_card_header_is_what_the_hub_reads(fetched: tuple[InatServer, Path], tmp_path: Path) -> None:
    inat, data = fetched
    expected = {
        "imagefolder": {"train": "train/**", "validation": "validation/**", "test": "test/**"},
        "webdataset": {"train": "train-*.tar", "validation": "validation-*.tar", "test": "test-*.tar"},
        "parquet": {"train": "data/train-*", "validation": "data/validation-*", "test": "data/test-*"},
    }
    for format_, data_files in expected.items():
        out = tmp_path / f"my {format_}"
        assert export(inat, data, out, "--split", SPLIT, "--format", format_).exit_code == 0
        card = (out / "README.md").read_text(encoding="utf-8")
        header = yaml.safe_load(card.split("---\n")[1])
        assert header["license"] == "other" and header["license_link"] == "CREDITS.md"
        for code in ("cc-by-4.0", "cc-by-nc-4.0", "cc0-1.0", "cc-by-nc-sa-4.0"):
            assert code in header["license_details"]
        assert header["task_categories"] == ["image-classification"]
        assert header["size_categories"] == ["n<1K"] and header["pretty_name"] == f"my {format_}"
        (config,) = header["configs"]
        assert {f["split"]: f["path"] for f in config["data_files"]} == data_files
        assert card.split("---\n", 2)[2].startswith(f"# my {format_}\n")
        document = json.loads((out / "croissant.json").read_text(encoding="utf-8"))
        assert document["conformsTo"] == "http://mlcommons.org/croissant/1.0"
        assert "https://creativecommons.org/licenses/by-nc/4.0/" in document["license"]
        photos = next(r for r in document["recordSet"] if r["@id"] == "photos")
        fields = [f["name"] for f in photos["field"]]
        assert fields[:5] == ["image", "label", "photo_id", "license_code", "attribution"]
    features = yaml.safe_load((tmp_path / "my webdataset/README.md").read_text().split("---\n")[1])
    declared = {f["name"]: f.get("dtype") for f in features["dataset_info"]["features"]}
    assert {declared[e] for e in ("jpg", "jpeg", "png")} == {"image"} and declared["cls"] == "int64"


def test_one_licence_is_named_as_the_hub_knows_it(inat: InatServer, tmp_path: Path) -> None:
    inat.add_taxon(1, "Plantae", rank="kingdom")
    inat.add_taxon(61299, "Lythrum salicaria", parent_id=1)
    inat.add_observation(1001, 61299, photos=[{"id": 10010, "license_code": "cc-by-sa"}], user_login="jo")
    data, out = tmp_path / "data", tmp_path / "out"
    write_taxa(data, TAXA[:1])
    fetch(inat, data)
    assert export(inat, data, out, "--format", "parquet").exit_code == 0
    header = yaml.safe_load((out / "README.md").read_text(encoding="utf-8").split("---\n")[1])
    assert header["license"] == "cc-by-sa-4.0" and "license_name" not in header
    document = json.loads((out / "croissant.json").read_text(encoding="utf-8"))
    assert document["license"] == "https://creativecommons.org/licenses/by-sa/4.0/"
    assert document["creator"] == [{"@type": "sc:Person", "name": "jo"}]


def test_min_per_taxon_keeps_a_taxon_with_exactly_that_many(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    """Quercus robur has N photos (2): --min-per-taxon N keeps it, N + 1 leaves it out."""
    inat, data = fetched
    robur = sum(row["taxon_name"] == "Quercus robur" for row in manifest(data))
    result = export(inat, data, tmp_path / "kept", "--min-per-taxon", str(robur))
    assert result.exit_code == 0 and "Left out" not in result.output
    assert sum(r["label"] == "Quercus robur" for r in read_csv(tmp_path / "kept/metadata.csv")) == robur
    result = export(inat, data, tmp_path / "left", "--min-per-taxon", str(robur + 1))
    assert (
        f"Left out, fewer than --min-per-taxon {robur + 1} photos: Quercus robur ({robur})" in result.output
    )


def test_pyarrow_is_loaded_by_the_parquet_writer_only(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    inat, data = fetched
    script = (
        "import sys\n"
        "from inatdl.cli import cli\n"
        "try:\n"
        "    cli.main(sys.argv[1:], prog_name='inatdl')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('pyarrow' in sys.modules, 'pandas' in sys.modules, file=sys.stderr)\n"
    )
    base = [sys.executable, "-c", script, "--data-dir", str(data), "dataset", "export"]
    loaded = {}
    for format_ in ("webdataset", "parquet"):
        run = subprocess.run(
            [*base, str(tmp_path / format_), "--format", format_], capture_output=True, text=True
        )
        loaded[format_] = run.stderr.strip().splitlines()[-1].split()
    assert loaded["webdataset"] == ["False", "False"]  # neither pyarrow nor pandas
    assert loaded["parquet"][0] == "True"


@pytest.mark.parametrize("format_", ["webdataset", "parquet"])
def test_a_split_without_photos_has_no_shard(
    fetched: tuple[InatServer, Path], tmp_path: Path, format_: str
) -> None:
    inat, data = fetched
    out = tmp_path / "out"

    result = export(inat, data, out, "--split", "train=0.99999,test=0.00001", "--format", format_)

    assert result.exit_code == 0, result.output
    assert "No photo in test" in result.output
    shards = sorted(p.name for p in out.rglob("*") if p.suffix in (".tar", ".parquet"))
    assert shards and all(name.startswith("train-") for name in shards)
    header = yaml.safe_load((out / "README.md").read_text(encoding="utf-8").split("---")[1])
    assert [split["split"] for config in header["configs"] for split in config["data_files"]] == ["train"]


def test_a_damaged_list_of_photos_stops_an_update_before_it_changes_anything(
    fetched: tuple[InatServer, Path], tmp_path: Path
) -> None:
    inat, data = fetched
    out = tmp_path / "out"
    args = ["--split", SPLIT, "--format", "webdataset", "--shard-size", SHARD]
    assert export(inat, data, out, *args).exit_code == 0
    with (out / ".inatdl-export-photos.txt").open("ab") as photos:
        photos.write(b"\xff\xfe not text\n")
    before = snapshot(out)

    result = export(inat, data, out, *args, "--max-per-taxon", "7")

    assert result.exit_code == 1
    assert ".inatdl-export-photos.txt is damaged" in result.output
    assert snapshot(out) == before
