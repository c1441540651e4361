"""The demo (tests/demo.py) as a user runs it, and the product without it."""

from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from demo import PLACE, Step, main

from inatdl.cli import cli

DEMO = Path(__file__).with_name("demo.py")
REPO = DEMO.parents[1]
SEVEN_LICENCES = {"cc0", "cc-by", "cc-by-nc", "cc-by-sa", "cc-by-nd", "cc-by-nc-sa", "cc-by-nc-nd"}


def fetch_totals(stdout: str) -> list[dict[str, int]]:
    """The 'total' row of each `photos fetch` summary."""
    return [
        dict(zip(("listed", "had", "new", "failed", "gone", "skipped"), map(int, m.groups()), strict=True))
        for m in re.finditer(r"^total +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) ", stdout, re.M)
    ]


def test_the_demo_runs_the_everyday_job_offline_and_the_rerun_downloads_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO), "--api-rate", "100"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Not found on iNaturalist (3): lythrum acutangulum, lythrum lydiae, lythrum theodori" in out
    assert "$ inatdl taxa resolve " in out and out.count("$ inatdl photos fetch --size medium") == 2
    first, rerun = fetch_totals(out)
    assert first["new"] > 100 and first["had"] == 0
    assert rerun["new"] == 0 and rerun["had"] == first["new"]
    answered = re.findall(r"the stand-in answered \d+ API requests? and (\d+) photo requests?", out)
    assert answered[2] == "0"  # the rerun asked the photo hosts for nothing
    data = tmp_path / "inatdl-demo" / "data"
    photos = sorted(p for p in (data / "photos").rglob("*") if p.is_file())
    assert len(photos) == first["new"] and all(p.read_bytes()[:3] == b"\xff\xd8\xff" for p in photos)
    with (data / "photos.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(data / row["path"] for row in rows) == photos
    assert {row["license_code"] for row in rows} <= SEVEN_LICENCES
    assert not (tmp_path / "inatdl-data").exists()  # the real default data dir is left alone
    if "dataset" in cli.commands:
        assert (tmp_path / "inatdl-demo" / "dataset").is_dir()
    else:
        assert "(skipped: this inatdl has no 'dataset' command yet)" in out


def test_a_failed_step_stops_the_demo_and_the_stand_in(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code = main(["--dir", str(tmp_path / "demo")], [Step("A typo", ("photos", "fetch", "--size", "huge"))])
    assert code == 2
    assert "Error: the demo stops: 'inatdl photos fetch --size huge' exited with 2" in capfd.readouterr().err
    assert not [t for t in threading.enumerate() if t.name.startswith("inat-")]


def test_the_demo_fails_when_the_rerun_downloads_anything(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    fetch_a_few = ("photos", "fetch", "--size", "square", "--max-per-taxon", "1")
    steps = [
        Step("Resolve", ("taxa", "resolve", "{species}")),
        Step("Fetch", fetch_a_few, downloads_nothing=True),
    ]
    assert main(["--dir", str(tmp_path / "demo"), "--api-rate", "100"], steps) == 1
    assert "this run should ask for no photo; it asked for" in capfd.readouterr().err


def test_the_demo_never_empties_a_folder_it_did_not_make(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["--dir", str(mine)]) == 1
    assert capfd.readouterr().err == (
        f"Error: {mine} exists and was not made by the demo; move it away or choose another with --dir\n"
    )
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table in /proc")
def test_sigterm_stops_the_running_command_and_the_stand_in(tmp_path: Path) -> None:
    fetches: list[int] = []
    demo = subprocess.Popen(
        [sys.executable, str(DEMO), "--api-rate", "100"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            if line.startswith("$ inatdl photos fetch"):
                break
        deadline = time.monotonic() + 10
        while not children(demo.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        fetches = children(demo.pid)
        demo.send_signal(signal.SIGTERM)
        _, err = demo.communicate(timeout=15)
        left_running = [pid for pid in fetches if running(pid)]
    finally:
        demo.kill()
        for pid in fetches:
            if running(pid):  # the demo left it behind: end it here
                os.kill(pid, signal.SIGKILL)
    assert demo.returncode == 130
    assert "Interrupted; the stand-in is stopped." in err
    assert len(fetches) == 1 and not left_running


def test_serve_keeps_the_stand_in_for_the_readmes_other_commands_until_ctrl_c(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [sys.executable, str(DEMO), "--api-rate", "100", "--serve"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        printed = []
        for line in demo.stdout:
            printed.append(line)
            if line.startswith("  export "):
                break
        variables = dict(pair.split("=", 1) for pair in shlex.split(printed[-1])[1:])
        assert "the stand-in keeps running" in "".join(printed)
        env = {**os.environ, **variables}
        job = ["--data-dir", str(tmp_path / "open-data-job")]
        commands = [
            ["photos", "fetch", "--size", "square", "--max-per-taxon", "1"],
            ["--data-dir", str(tmp_path / "place-job"), "taxa", "observed", "--place-id", str(PLACE)],
            ["opendata", "sync"],
            [*job, "taxa", "resolve", str(REPO / "species.csv"), "--source", "open-data"],
            [*job, "photos", "fetch", "--source", "open-data", "--size", "square", "--max-per-taxon", "1"],
        ]
        for command in commands:
            inatdl = [sys.executable, "-m", "inatdl", *command]
            done = subprocess.run(inatdl, env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, (command, done.stdout + done.stderr)
        data, open_data = Path(variables["INATDL_DATA_DIR"]), Path(variables["INATDL_OPEN_DATA_DIR"])
        assert data.is_relative_to(tmp_path / "inatdl-demo")
        assert open_data.is_relative_to(tmp_path / "inatdl-demo")
        assert len(list(data.glob("photos/*/*_square.*"))) == 10  # one a taxon of the demo
        assert len(list((tmp_path / "open-data-job").glob("photos/*/*_square.*"))) == 10
        with (tmp_path / "place-job" / "taxa.csv").open(encoding="utf-8", newline="") as handle:
            observed = [row["name"] for row in csv.DictReader(handle)]
        assert sorted(observed) == ["Lythrum hyssopifolia", "Lythrum junceum", "Lythrum tribracteatum"]
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=15)
    finally:
        demo.kill()
    assert demo.returncode == 0, err
    assert out.endswith("The stand-in is stopped.\n")
    with pytest.raises(OSError):
        urllib.request.urlopen(variables["INATDL_API_URL"] + "/taxa?q=Lythrum", timeout=5)


def test_pip_install_does_not_install_the_stand_in_or_the_demo(tmp_path: Path) -> None:
    # A copy, so that no build/ folder left in the clone by an earlier build adds its files.
    leftovers = shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "inatdl-d*")
    clone = shutil.copytree(REPO, tmp_path / "clone", ignore=leftovers)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet"]
    subprocess.run([*pip_wheel, "--wheel-dir", str(tmp_path), str(clone)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("inatdl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"inatdl", wheel.name.split("-py")[0] + ".dist-info"}
    assert not [name for name in names if "inat_server" in name or "demo" in name]
