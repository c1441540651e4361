"""img2dataset downloads a `photos plan` as it is: the nox session ``img2dataset``.

Not part of the default suite (img2dataset is a large install). Starts the test server,
syncs its open data, writes the plan of the Lythrum world (`photos plan --source
open-data --split ...`), runs the real `img2dataset` on it against the server, and checks
that every planned photo arrived with the plan's bytes and columns. Exit status 1 on any
difference. Run: ``nox -s img2dataset`` (or ``python tests/img2dataset_check.py`` in an
environment that has img2dataset and inatdl).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from inat_server import InatServer  # noqa: E402
from world import build_lythrum, write_species  # noqa: E402


def inatdl(inat: InatServer, work: Path, *args: str) -> str:
    command = [
        sys.executable, "-m", "inatdl", "--data-dir", str(work / "data"), "--api-url", inat.api_url,
        "--open-data-url", inat.open_data_url, "--open-data-dir", str(work / "open-data"), *args,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"inatdl {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def main() -> int:
    import pyarrow.parquet as pq

    with InatServer() as inat, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_lythrum(inat)
        species = write_species(work / "species.csv", ["Lythrum salicaria", "Lythrum alatum"])
        inatdl(inat, work, "opendata", "sync")
        inatdl(inat, work, "taxa", "resolve", str(species), "--source", "open-data")
        plan_path = work / "plan.parquet"
        job = ("--source", "open-data", "--size", "small", "--split", "train=0.8,test=0.2")
        said = inatdl(inat, work, "photos", "plan", str(plan_path), *job)
        plan = {row["photo_id"]: row for row in pq.read_table(plan_path).to_pylist()}
        extra = json.loads(said.split("--save_additional_columns '", 1)[1].split("'", 1)[0])
        out = work / "images"
        command = [
            str(Path(sys.executable).parent / "img2dataset"), "--url_list", str(plan_path),
            "--input_format", "parquet", "--url_col", "url", "--caption_col", "label",
            "--save_additional_columns", json.dumps(extra), "--output_folder", str(out),
            "--output_format", "files", "--resize_mode", "no", "--skip_reencode", "True",
            "--processes_count", "1", "--thread_count", "4", "--enable_wandb", "False",
            "--disallowed_header_directives", "[]",
        ]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)
        problems = []
        arrived = {}
        for meta in out.rglob("*.json"):
            record = json.loads(meta.read_text())
            if record.get("status") != "success" or "photo_id" not in record:
                continue
            image = next(p for p in meta.parent.glob(meta.stem + ".*") if p.suffix not in (".json", ".txt"))
            arrived[record["photo_id"]] = (record, image.read_bytes())
        for photo_id, row in plan.items():
            if photo_id == 1400:  # gone (410) on the server, as on iNaturalist
                continue
            if photo_id not in arrived:
                problems.append(f"photo {photo_id} did not arrive")
                continue
            record, body = arrived[photo_id]
            if body != inat.photo_bytes(photo_id, "small"):
                problems.append(f"photo {photo_id}: bytes differ")
            for column in ("label", *extra):
                expected = row[column] if column != "label" else row["taxon_name"]
                if column != "label" and record.get(column) != expected:
                    problems.append(f"photo {photo_id}: {column} {record.get(column)!r} != {expected!r}")
            if record.get("caption") != row["label"]:
                problems.append(f"photo {photo_id}: caption {record.get('caption')!r} != {row['label']!r}")
        for line in problems:
            print(line, file=sys.stderr)
        print(f"img2dataset: {len(arrived)} of {len(plan)} planned photos arrived; {len(problems)} problems")
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
