"""How the command line is used: where global options go, and a reader that stops reading."""

from __future__ import annotations

import builtins
import fcntl
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from inat_server import InatServer
from world import manifest, run, write_species

from inatdl.__main__ import main as inatdl_main
from inatdl.cli import cli, groups

# Global options after the command (issue 22 item 8) ---------------------------------------


def test_global_options_are_taken_after_the_command_too(world: InatServer, tmp_path: Path) -> None:
    species = write_species(tmp_path / "species.csv", ["lythrum salicaria"])
    data = tmp_path / "after"
    result = run(world, tmp_path / "before", "taxa", "resolve", str(species), "--data-dir", str(data), "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # -q, after the command
    assert (data / "taxa.csv").exists() and not (tmp_path / "before").exists()  # the last one wins
    result = run(world, data, "photos", "fetch", "--size", "medium", f"--data-dir={data}", "--api-rate", "50")
    assert result.exit_code == 0, result.output
    assert len(manifest(data)) > 0


def test_a_global_option_after_the_command_without_its_value_is_a_usage_error(
    world: InatServer, tmp_path: Path
) -> None:
    result = run(world, tmp_path / "data", "photos", "fetch", "--data-dir")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "Error: Option '--data-dir' requires an argument."


def test_an_option_of_the_command_keeps_a_value_that_looks_like_a_global_option(
    world: InatServer, tmp_path: Path
) -> None:
    """`--column -q`: "-q" is the column's name here, not --quiet moved before the command."""
    species = write_species(tmp_path / "species.csv", ["lythrum salicaria"], header="-q")
    result = run(world, tmp_path / "data", "taxa", "resolve", str(species), "--column", "-q")
    assert result.exit_code == 0, result.output
    assert "lythrum salicaria" in result.stdout


# A reader that stops reading (issue 22 item 9) --------------------------------------------


def _child(world: InatServer, tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "INATDL_API_URL": world.api_url, "INATDL_DATA_DIR": str(tmp_path / "data")}
    command = [sys.executable, "-m", "inatdl", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="needs Linux's F_SETPIPE_SZ")
def test_a_reader_that_reads_a_few_lines_and_leaves_gets_the_exit_code_of_the_work(
    inat: InatServer, tmp_path: Path
) -> None:
    """`inatdl taxa observed ... | head -3`: the table is larger than the pipe, so the
    reader is gone before the last lines are written; the command still exits 0, every
    time, with nothing on stderr, and taxa.csv is written."""
    inat.add_taxon(1, "Animalia", rank="kingdom")
    for number in range(200):
        inat.add_taxon(100 + number, f"Gobius species{number:03d}", parent_id=1)
        inat.add_observations(100 + number, 1, first_id=1000 + number, place_ids=(7,))
    child = _child(inat, tmp_path, "taxa", "observed", "--place-id", "7")
    assert child.stdout is not None
    fcntl.fcntl(child.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)  # 200 lines do not fit
    first = os.read(child.stdout.fileno(), 200)
    child.stdout.close()  # the reader leaves: nearly all of the table is still to come
    _, stderr = child.communicate(timeout=60)
    assert first.startswith(b" taxon_id  name")
    assert child.returncode == 0
    assert stderr == b"", stderr
    assert len((tmp_path / "data" / "taxa.csv").read_text().splitlines()) == 201


def test_a_failure_still_exits_1_when_the_reader_has_left(world: InatServer, tmp_path: Path) -> None:
    child = _child(world, tmp_path, "taxa", "resolve", str(tmp_path / "missing.csv"))
    assert child.stdout is not None
    child.stdout.close()
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 1
    assert stderr.decode().startswith("Error: species file ")


# Start-up ---------------------------------------------------------------------------------


def test_photos_fetch_starts_without_the_table_libraries() -> None:
    """`photos fetch` from the API starts fast: starting it (here for its --help) imports
    neither pandas nor pyarrow nor duckdb; only the commands that need them load them."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "inatdl", "photos", "fetch", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    imported = {line.rsplit("|", 1)[-1].strip() for line in lines}
    assert {"inatdl.cli", "inatdl.fetch"} <= imported  # importtime's lines were read
    assert {name.split(".")[0] for name in imported} & {"pandas", "pyarrow", "duckdb"} == set()
    assert "--max-per-taxon" in done.stdout


#: What `photos fetch` from the API has no use for: other commands' code and the table libraries.
NOT_FOR_PHOTOS_FETCH = (
    "inatdl.export",
    "inatdl.opendata.",  # the package's own __init__ (the open-data dir's default) is small
    "inatdl.records_fetch",
    "inatdl.cli.dataset",
    "inatdl.cli.records",
    "numpy",
    "pandas",
    "pyarrow",
    "duckdb",
)

_RUN_AND_LIST_MODULES = """
import sys
from inatdl.__main__ import main
sys.argv[1:] = ["photos", "fetch", "--size", "small", "--api-rate", "1000"]
try:
    main()
finally:
    print("modules:", *sorted(sys.modules))
"""


def test_a_photos_fetch_from_the_api_imports_only_what_it_runs(world: InatServer, tmp_path: Path) -> None:
    """Each command's module (and the library behind it) is imported when that command
    runs: a whole `photos fetch` loads neither export's, the open data's nor the records'
    code, nor numpy, pandas, pyarrow or duckdb (its peak memory is the code it loads)."""
    env = {**os.environ, "INATDL_API_URL": world.api_url, "INATDL_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST_MODULES], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert len(manifest(tmp_path / "data")) > 0  # the photos were fetched
    modules = done.stdout.rsplit("modules: ", 1)[1].split()
    assert {"inatdl.cli.photos", "inatdl.fetch"} <= set(modules)  # the list was read
    assert [name for name in modules if name.startswith(NOT_FOR_PHOTOS_FETCH)] == []


def test_a_ctrl_c_while_a_command_is_imported_is_one_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command's module is imported when it runs, after the entry point's own import:
    a Ctrl-C in it ends the command as one there does."""
    real_import_module = groups.import_module

    def interrupted(name: str, *args: Any) -> Any:
        if name == "inatdl.cli.photos":
            raise KeyboardInterrupt
        return real_import_module(name, *args)

    monkeypatch.setattr(groups, "import_module", interrupted)
    result = CliRunner().invoke(cli, ["photos", "fetch", "--size", "small"])
    assert result.exit_code == 130
    assert result.stderr == "Error: interrupted while starting; nothing was done\n"


def test_ctrl_c_while_the_command_starts_is_one_line_and_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Ctrl-C during the half second of imports: no traceback (the entry point's own)."""
    real_import = builtins.__import__

    def interrupted(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "inatdl.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    with pytest.raises(SystemExit) as stopped:
        inatdl_main()
    assert stopped.value.code == 130
    assert capsys.readouterr().err == "Error: interrupted while starting; nothing was done\n"
