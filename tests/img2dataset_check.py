"""img2dataset downloads a `photos plan` as it is: the nox session ``img2dataset``.

Not part of the default suite (img2dataset is a large install). Starts the test server,
syncs its open data, writes the plan of the Lythrum world (`photos plan --source
open-data --split ...`), then runs the real `img2dataset` against the server as a user is
told to, word for word: the command `photos plan` prints (``--output_format files``), the
README's "On one machine" command (``webdataset``) and the README's Spark script (on a local
Spark of two cores, writing to a local folder; said plainly when pyspark or Java is missing). Checks
that every planned photo arrived (all but the one the server has gone, 410) with the bytes
the server served, the label as its caption and every column the command keeps. Exit status
1 on any difference. Run: ``nox -s img2dataset`` (or ``python tests/img2dataset_check.py``
in an environment that has img2dataset and inatdl).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
sys.path.insert(0, str(HERE))

from inat_server import InatServer  # noqa: E402
from world import build_lythrum, write_species  # noqa: E402

GONE = 1400  # gone (410) on the server, as on iNaturalist: planned, never arrives
Arrived = dict[int, tuple[dict[str, Any], bytes]]  # photo id: (img2dataset's record, the image's bytes)


def inatdl(inat: InatServer, work: Path, *args: str) -> str:
    command = [
        sys.executable, "-m", "inatdl", "--data-dir", str(work / "data"), "--api-url", inat.api_url,
        "--open-data-url", inat.open_data_url, "--open-data-dir", str(work / "open-data"), *args,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"inatdl {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def kept_columns(command: list[str]) -> list[str]:
    """The columns an img2dataset command keeps (--save_additional_columns)."""
    return list(json.loads(command[command.index("--save_additional_columns") + 1]))


def printed_command(said: str) -> list[str]:
    """The img2dataset command `photos plan` printed, as the shell would split it."""
    line = next((ln for ln in said.splitlines() if ln.strip().startswith("img2dataset ")), None)
    if line is None:
        raise SystemExit(f"photos plan printed no img2dataset command:\n{said}")
    return shlex.split(line)


def readme_command(heading: str) -> list[str]:
    """The first img2dataset command of the fenced block after ``heading`` in README.md."""
    text = README.read_text(encoding="utf-8")
    found = re.search(re.escape(heading) + r"\s*```\n(.*?)```", text, re.DOTALL)
    if found is None:
        raise SystemExit(f"README.md has no command block after {heading!r}")
    return shlex.split(found.group(1).replace("\\\n", " "))


def readme_spark_script() -> str:
    """The README's Spark script, on a local Spark of two cores writing to a local folder."""
    text = README.read_text(encoding="utf-8")
    found = re.search(r"On a Spark cluster.*?```python\n(.*?)```", text, re.DOTALL)
    if found is None:
        raise SystemExit("README.md has no Spark script after 'On a Spark cluster'")
    script = found.group(1)
    for cluster, local in (("spark://MASTER:7077", "local[2]"), ("s3://my-bucket/inat", "images")):
        if cluster not in script:
            raise SystemExit(f"the README's Spark script no longer names {cluster}: update this check")
        script = script.replace(cluster, local)
    return script


def run_spark_script(script: str, plan: Path, folder: Path) -> Path:
    """Run the script with this environment's Python as the workers' too; its output folder."""
    folder.mkdir()
    (folder / "plan.parquet").write_bytes(plan.read_bytes())
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run([sys.executable, "-c", script], cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the README's Spark script failed:\n{done.stderr[-4000:]}")
    return folder / "images"


def spark_missing() -> str | None:
    """Why the Spark run cannot happen here, if it cannot."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (nox -s img2dataset installs it)"
    if shutil.which("java") is None:
        return "Spark needs Java: no java on PATH"
    return None


def run_img2dataset(command: list[str], plan: Path, folder: Path) -> Path:
    """Run ``command`` (img2dataset from this environment) in a new ``folder`` holding the
    plan as plan.parquet (img2dataset skips the shards an output folder already has); its
    output folder."""
    if command[0] != "img2dataset":
        raise SystemExit(f"not an img2dataset command: {shlex.join(command)}")
    folder.mkdir()
    (folder / "plan.parquet").write_bytes(plan.read_bytes())
    command = [str(Path(sys.executable).parent / "img2dataset"), *command[1:]]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{done.stderr[-4000:]}")
    return folder / command[command.index("--output_folder") + 1]


def arrived_files(folder: Path) -> Arrived:
    """--output_format files: NNNNN/KEY.json beside KEY.jpg."""
    arrived: Arrived = {}
    for meta in folder.rglob("*.json"):
        record = json.loads(meta.read_text())
        if record.get("status") == "success":
            arrived[record["photo_id"]] = (record, meta.with_suffix(".jpg").read_bytes())
    return arrived


def arrived_webdataset(folder: Path) -> Arrived:
    """--output_format webdataset: NNNNN.tar of KEY.json and KEY.jpg."""
    members: dict[str, dict[str, bytes]] = {}
    for shard in folder.glob("*.tar"):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                key, _, ext = member.name.rpartition(".")
                body = tar.extractfile(member)
                if body is not None:
                    members.setdefault(key, {})[ext] = body.read()
    arrived: Arrived = {}
    for sample in members.values():
        record = json.loads(sample["json"])
        if record.get("status") == "success":
            arrived[record["photo_id"]] = (record, sample["jpg"])
    return arrived


def differences(
    inat: InatServer, plan: dict[int, dict[str, Any]], arrived: Arrived, kept: list[str]
) -> list[str]:
    """What img2dataset wrote that is not the plan: a photo missing or extra, other bytes
    than the server's, a caption other than the label, a kept column changed."""
    problems = [f"photo {p} arrived but was not planned" for p in arrived if p not in plan]
    for photo_id, row in plan.items():
        if photo_id == GONE:
            if photo_id in arrived:
                problems.append(f"photo {photo_id} is gone on the server yet arrived")
            continue
        if photo_id not in arrived:
            problems.append(f"photo {photo_id} did not arrive")
            continue
        record, body = arrived[photo_id]
        served = inat.photo_bytes(photo_id, str(row["size"]))
        if body != served:
            problems.append(f"photo {photo_id}: {len(body)} bytes, not the {len(served)} bytes served")
        if record.get("caption") != row["label"]:
            problems.append(f"photo {photo_id}: caption {record.get('caption')!r} != label {row['label']!r}")
        for column in kept:
            if record.get(column) != row[column]:
                problems.append(f"photo {photo_id}: {column} {record.get(column)!r} != {row[column]!r}")
    return problems


def main() -> int:
    import pyarrow.parquet as pq

    with InatServer() as inat, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_lythrum(inat)
        species = write_species(work / "species.csv", ["Lythrum salicaria", "Lythrum alatum"])
        inatdl(inat, work, "opendata", "sync")
        inatdl(inat, work, "taxa", "resolve", str(species), "--source", "open-data")
        job = ("--source", "open-data", "--size", "small", "--split", "train=0.8,test=0.2")
        said = inatdl(inat, work, "photos", "plan", "plan.parquet", *job)
        plan = {row["photo_id"]: row for row in pq.read_table(work / "plan.parquet").to_pylist()}
        one_machine = readme_command("On one machine:")
        runs: list[tuple[str, Callable[[Path], Path], list[str], Callable[[Path], Arrived]]] = [
            ("the command photos plan printed", partial(run_img2dataset, printed_command(said)),
             kept_columns(printed_command(said)), arrived_files),
            ("README's On one machine", partial(run_img2dataset, one_machine), kept_columns(one_machine),
             arrived_webdataset),
        ]  # fmt: skip
        script, missing = readme_spark_script(), spark_missing()
        if missing is None:
            kept = json.loads(re.search(r"save_additional_columns=(\[.*?\])", script)[1])  # type: ignore[index]
            spark = partial(run_spark_script, script)
            runs.append(("README's Spark script, on a local Spark", spark, kept, arrived_webdataset))
        else:
            print(f"img2dataset: the README's Spark script was NOT run: {missing}")
        failed = False
        for run, (name, download, kept, read) in enumerate(runs):
            arrived = read(download(work / "plan.parquet", work / f"run{run}"))
            problems = differences(inat, plan, arrived, kept)
            for line in problems:
                print(f"{name}: {line}", file=sys.stderr)
            print(
                f"img2dataset, {name}: {len(arrived)} of {len(plan)} planned photos arrived "
                f"(photo {GONE} is gone on the server), {len(kept)} columns kept; {len(problems)} problems"
            )
            failed = failed or bool(problems)
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
