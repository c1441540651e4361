"""See the everyday job run without a network: ``python tests/demo.py`` from a clone.

It starts the tests' stand-in for iNaturalist (tests/inat_server.py) on loopback, fills it
with the names of the example species.csv, and runs the real ``inatdl`` commands against it
as a user types them, into a folder of its own (``inatdl-demo/``, never ``inatdl-data/``).
The stand-in's observations carry photo URLs on its own two loopback hosts (its imitations
of static.inaturalist.org and of the open-data bucket), so inatdl downloads from it as from
iNaturalist, with no setting of its own; NO_PROXY keeps a proxy for the internet off them.
The stand-in stops when the demo ends, also on Ctrl-C or when a step fails; the exit code
is then not 0. With ``--serve`` it keeps running after the demo, until Ctrl-C, and the demo
prints the variables that point inatdl at it, to try every command of the README offline.
The demo lives under tests/ because it is no part of inatdl: ``pip install .`` never
installs it, and the ``inatdl`` command never starts it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from inat_server import InatServer

REPO = Path(__file__).resolve().parents[1]
SPECIES_CSV = REPO / "species.csv"
DEMO_DIR = Path("inatdl-demo")
#: In the demo folder: it was made by the demo, which may empty it.
MARKER = ".made-by-inatdl-demo"
#: API requests a second: ten times iNaturalist's pace, so the whole demo takes seconds.
API_RATE = 10.0
#: Seconds the stand-in waits before each answer, like a server not far away.
LATENCY = 0.03
EXIT_INTERRUPTED = 130


# --------------------------------------------------------------------------- the steps


@dataclass(frozen=True)
class Step:
    """One inatdl command of the demo, as a user would type it after ``inatdl``."""

    title: str
    args: tuple[str, ...]  # "{species}" and "{dataset}" are replaced by their paths
    needs_command: str | None = None  # skipped, with a note, when the installed inatdl lacks it
    downloads_nothing: bool = False  # the demo fails if the photo hosts are asked for anything


FETCH = ("photos", "fetch", "--size", "medium")
STEPS = (
    Step("Resolve the example names to iNaturalist taxa", ("taxa", "resolve", "{species}")),
    Step("Download the photos of the resolved taxa", FETCH),
    Step(
        "Run the same command again: it resumes and finds nothing left to download",
        FETCH,
        downloads_nothing=True,
    ),
    Step(
        "Export a dataset that torchvision and Hugging Face load as it is",
        ("dataset", "export", "{dataset}", "--split", "train=0.8,validation=0.1,test=0.1"),
        needs_command="dataset",
    ),
)


# --------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class Species:
    """A taxon of the demo world and how much of it the stand-in serves."""

    name: str
    taxon_id: int
    observations: int
    region: tuple[float, float, float, float]  # south, west, north, east, where it is seen


EUROPE_AND_AMERICA = (38.0, -95.0, 58.0, 30.0)
EASTERN_AMERICA = (28.0, -100.0, 47.0, -72.0)
MEDITERRANEAN = (34.0, -9.0, 45.0, 36.0)
CAUCASUS = (36.0, 40.0, 44.0, 50.0)
LYTHRUM, ALATUM, SALICARIA = 61297, 61298, 61299
#: A place of the demo world (an iNaturalist place id), holding its Mediterranean observations.
PLACE = 97394
DEMO_SPECIES = (
    Species("Lythrum salicaria", SALICARIA, 70, EUROPE_AND_AMERICA),
    Species("Lythrum alatum", ALATUM, 26, EASTERN_AMERICA),
    Species("Lythrum hyssopifolia", 61300, 18, MEDITERRANEAN),
    Species("Lythrum virgatum", 61301, 12, (44.0, 10.0, 55.0, 50.0)),
    Species("Lythrum portula", 61302, 14, (42.0, -10.0, 60.0, 30.0)),
    Species("Lythrum tribracteatum", 61303, 5, MEDITERRANEAN),
    Species("Lythrum junceum", 61304, 8, MEDITERRANEAN),
    Species("Lythrum hyrcanicum", 61305, 3, CAUCASUS),
    Species("Lythrum nieuwlandii", 61306, 2, EASTERN_AMERICA),
    Species("Lythrum schelkovnikovii", 61307, 1, CAUCASUS),
)
#: A variety, whose observations go to its species' folder (the species is what was asked).
VARIETY = Species("Lythrum alatum lanceolatum", 61308, 6, EASTERN_AMERICA)
#: An inactive name of species.csv, followed to its current taxon.
SYNONYM = ("Lythrum americanum", 61309, ALATUM)
#: Observers and the licence each gives their photos (None: all rights reserved), as often.
OBSERVERS = (
    ("samroom", "cc-by-nc", 6),
    ("kueda", "cc-by", 3),
    ("botanygirl", "cc-by-nc", 5),
    ("wetland_walker", None, 4),
    ("cmarmaduke", "cc0", 2),
    ("flora_iberica", "cc-by-sa", 2),
    ("amelanchier", "cc-by-nc-nd", 1),
    ("tk_naturalist", None, 2),
    ("loosestrife_watch", "cc-by-nc-sa", 1),
    ("ecolab_eu", "cc-by-nc", 3),
)
QUALITY_GRADES, QUALITY_WEIGHTS = ("research", "needs_id", "casual"), (14, 5, 1)


def build_demo_world(inat: InatServer, seed: int = 14) -> tuple[int, int]:
    """The names of species.csv, 11 of its 14 known (one an inactive name), and a variety;
    returns the number of observations and of photos served.

    Photos under the observers' mixed licences (all rights reserved ones on the static host,
    the others on the open-data host, as iNaturalist does), one to three an observation,
    some all rights reserved beside licensed ones of the same observation, two flagged (the
    API then gives a placeholder image) and one gone (410).
    """
    rng = random.Random(seed)
    inat.add_taxon(47126, "Plantae", rank="kingdom", common_name="Plants")
    inat.add_taxon(52728, "Lythraceae", rank="family", parent_id=47126, common_name="Loosestrife Family")
    inat.add_taxon(LYTHRUM, "Lythrum", rank="genus", parent_id=52728, common_name="Loosestrifes")
    for species in DEMO_SPECIES:
        inat.add_taxon(species.taxon_id, species.name, parent_id=LYTHRUM)
    inat.add_taxon(VARIETY.taxon_id, VARIETY.name, rank="variety", parent_id=ALATUM)
    name, taxon_id, current = SYNONYM
    inat.add_taxon(taxon_id, name, parent_id=LYTHRUM, is_active=False, current_synonymous_taxon_ids=[current])
    # Observation ids grow with upload time, across species, as on iNaturalist.
    sightings = [s for s in (*DEMO_SPECIES, VARIETY) for _ in range(s.observations)]
    rng.shuffle(sightings)
    flagged = {(SALICARIA, 4), (ALATUM, 2)}  # (taxon, its n-th observation): first photo flagged
    gone = (SALICARIA, 11)  # its last photo is gone from the photo host
    seen: dict[int, int] = {}
    observation_id, photos = 1_504_000, 0
    for species in sightings:
        observation_id += rng.randint(1, 40_000)
        nth = seen[species.taxon_id] = seen.get(species.taxon_id, -1) + 1
        login, licence, _ = rng.choices(OBSERVERS, [w for *_, w in OBSERVERS])[0]
        specs: list[dict[str, Any]] = []
        for k in range(rng.choice((1, 1, 1, 2, 2, 3))):
            # Now and then a later photo of an observation keeps all rights reserved.
            photo_licence = licence if k == 0 or rng.random() > 0.2 else None
            spec: dict[str, Any] = {"id": observation_id * 10 + k, "license_code": photo_licence}
            spec["host"] = "open" if photo_licence else "static"
            spec["ext"] = "jpeg" if photo_licence and rng.random() < 0.25 else "jpg"
            if k == 0 and (species.taxon_id, nth) in flagged:
                spec["flagged"] = True
            specs.append(spec)
        if (species.taxon_id, nth) == gone:
            specs[-1].update(license_code="cc-by-nc", host="open", gone=410)
        south, west, north, east = species.region
        inat.add_observation(
            observation_id,
            species.taxon_id,
            photos=specs,
            quality_grade=rng.choices(QUALITY_GRADES, QUALITY_WEIGHTS)[0],
            observed_on=f"{rng.randint(2012, 2025)}-{rng.randint(5, 9):02d}-{rng.randint(1, 28):02d}",
            latitude=round(rng.uniform(south, north), 4),
            longitude=round(rng.uniform(west, east), 4),
            user_login=login,
            place_ids=(PLACE,) if species.region == MEDITERRANEAN else (),
        )
        photos += len(specs)
    return len(sightings), photos


# --------------------------------------------------------------------------- running it


class DemoError(Exception):
    """Something the demo cannot do; told in one line."""


def main(argv: Sequence[str] | None = None, steps: Sequence[Step] = STEPS) -> int:
    """Run ``steps`` against a fresh stand-in; the exit code: 0, a failed step's, or 130."""
    parser = argparse.ArgumentParser(
        prog="python tests/demo.py",
        description="Run inatdl's everyday job against a local stand-in for iNaturalist (no network).",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEMO_DIR,
        help="the demo's folder, emptied at each run (default: %(default)s)",
    )
    parser.add_argument(
        "--api-rate", type=float, default=API_RATE, help="API requests a second (default: %(default)g)"
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="after the demo, keep the stand-in running until Ctrl-C, to try the README's other commands",
    )
    options = parser.parse_args(argv)
    interrupts = Interrupts()
    previous = {signum: signal.signal(signum, interrupts) for signum in (signal.SIGINT, signal.SIGTERM)}
    inat = InatServer()
    code, started = 1, time.monotonic()
    try:
        commands = _installed_commands()
        _prepare(options.dir)
        inat.start()
        observations, photos = build_demo_world(inat)
        inat.latency = LATENCY
        _say(_intro(inat, options.dir, options.api_rate, observations, photos))
        code = _run_steps(inat, steps, commands, options.dir, options.api_rate, interrupts)
        if code == 0 and options.serve:
            _say(_outro(options.dir, time.monotonic() - started, serving=True))
            _serve(inat, options.dir, options.api_rate)
    except DemoError as exc:
        print(f"Error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    finally:
        inat.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if code == EXIT_INTERRUPTED:
        print(f"\nInterrupted; the stand-in is stopped. What was done is in {options.dir}.", file=sys.stderr)
    elif code == 0 and options.serve:
        _say("\nThe stand-in is stopped.")
    elif code == 0:
        _say(_outro(options.dir, time.monotonic() - started))
    return code


class Terminated(KeyboardInterrupt):
    """SIGTERM, sent to the demo alone: unlike a Ctrl-C, it has not reached the running command."""


class Interrupts:
    """The handler of Ctrl-C and SIGTERM: an exception, held back while a command starts
    (raised inside ``subprocess.Popen``, it would leave the new process running unseen)."""

    def __init__(self) -> None:
        self.holding = False
        self.held: int | None = None

    def __call__(self, signum: int, frame: object) -> None:
        if self.holding:
            self.held = signum
        else:
            self._raise(signum)

    def release(self) -> None:
        """Stop holding back, and raise for a signal that came meanwhile."""
        self.holding = False
        signum, self.held = self.held, None
        if signum is not None:
            self._raise(signum)

    @staticmethod
    def _raise(signum: int) -> NoReturn:
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def _installed_commands() -> set[str]:
    """The commands of the inatdl that ``python -m inatdl`` runs here."""
    try:
        from inatdl.cli import cli
    except ImportError:
        raise DemoError(
            f"inatdl is not installed for {sys.executable}; in the clone, run: pip install ."
        ) from None
    return set(cli.commands)


def _prepare(root: Path) -> None:
    """Empty the folder of an earlier demo; never touch a folder the demo did not make."""
    if root.exists():
        if not root.is_dir() or (any(root.iterdir()) and not (root / MARKER).exists()):
            raise DemoError(
                f"{root} exists and was not made by the demo; move it away or choose another with --dir"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("Made by tests/demo.py, which empties this folder at each run.\n")


def _paths(root: Path) -> dict[str, str]:
    """The paths the commands are given: short ones, as a user types them in the clone."""
    try:
        species = os.path.relpath(SPECIES_CSV)
    except ValueError:  # on another Windows drive
        species = str(SPECIES_CSV)
    return {
        "species": str(SPECIES_CSV) if species.startswith("..") else species,
        "data": str(root / "data"),
        "dataset": str(root / "dataset"),
        "open_data": str(root / "open-data"),
    }


def _stand_in_variables(inat: InatServer, root: Path, api_rate: float) -> dict[str, str]:
    """The variables pointing inatdl at the stand-in (its API and its open data) and at the
    demo's own data and open-data dirs, never the user's."""
    paths = _paths(root)
    variables = {
        "INATDL_API_URL": inat.api_url,
        "INATDL_OPEN_DATA_URL": inat.open_data_url,
        "INATDL_DATA_DIR": paths["data"],
        "INATDL_OPEN_DATA_DIR": paths["open_data"],
        "INATDL_API_RATE": f"{api_rate:g}",
    }
    for key in ("NO_PROXY", "no_proxy"):  # a proxy for the internet must not catch loopback
        variables[key] = ",".join(part for part in (os.environ.get(key), "127.0.0.1", "localhost") if part)
    return variables


def _child_env(inat: InatServer, root: Path, api_rate: float) -> dict[str, str]:
    """The user's environment with inatdl pointed at the stand-in and the demo's data dir."""
    return {**os.environ, **_stand_in_variables(inat, root, api_rate)}


def _intro(inat: InatServer, root: Path, api_rate: float, observations: int, photos: int) -> str:
    paths = _paths(root)
    return "\n".join(
        [
            "inatdl demo: the everyday job against a stand-in for iNaturalist on this machine;",
            "no network is used. The stand-in (tests/inat_server.py, the one the tests use) knows",
            f"the names of {paths['species']}: {observations} observations with {photos} photos under mixed",
            "licences (some all rights reserved), flagged photos, a photo gone, a little latency.",
            "The commands are the README's; three variables point them at the stand-in and at",
            "a data dir of the demo's own:",
            f"  INATDL_API_URL={inat.api_url}",
            f"  INATDL_DATA_DIR={paths['data']}",
            f"  INATDL_API_RATE={api_rate:g}   (iNaturalist asks for 1 a second; the stand-in takes more)",
        ]
    )


def _run_steps(
    inat: InatServer,
    steps: Sequence[Step],
    commands: set[str],
    root: Path,
    api_rate: float,
    interrupts: Interrupts,
) -> int:
    paths = _paths(root)
    env = _child_env(inat, root, api_rate)
    for number, step in enumerate(steps, 1):
        _say(f"\n[{number}/{len(steps)}] {step.title}")
        if step.needs_command is not None and step.needs_command not in commands:
            _say(f"(skipped: this inatdl has no '{step.needs_command}' command yet)")
            continue
        args = [arg.format(**paths) for arg in step.args]
        _say("$ " + shlex.join(["inatdl", *args]))
        api_before, photos_before = len(inat.api_requests()), len(inat.photo_requests())
        code = _run_child([sys.executable, "-m", "inatdl", *args], env, interrupts)
        api = len(inat.api_requests()) - api_before
        photos = len(inat.photo_requests()) - photos_before
        api_words = "API request" if api == 1 else "API requests"
        photo_words = "photo request" if photos == 1 else "photo requests"
        _say(f"(the stand-in answered {api} {api_words} and {photos} {photo_words})")
        if code != 0:
            print(f"Error: the demo stops: 'inatdl {shlex.join(args)}' exited with {code}", file=sys.stderr)
            return code if code > 0 else 1
        if step.downloads_nothing and photos:
            print(
                f"Error: the demo stops: this run should ask for no photo; it asked for {photos}",
                file=sys.stderr,
            )
            return 1
    if inat.errors:
        print(f"Error: the stand-in itself failed:\n{inat.errors[0]}", file=sys.stderr)
        return 1
    return 0


def _run_child(command: list[str], env: dict[str, str], interrupts: Interrupts) -> int:
    """Run one inatdl command on this terminal; on Ctrl-C or SIGTERM, stop it, then go on."""
    interrupts.holding = True
    try:
        child = subprocess.Popen(command, env=env)
    except BaseException:
        interrupts.holding = False
        raise
    try:
        interrupts.release()
        return child.wait()
    except BaseException as exc:
        _stop(child, told=isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Terminated))
        raise


def _stop(child: subprocess.Popen[bytes], told: bool) -> None:
    """Let the command save its state and end, as inatdl does on Ctrl-C and on SIGTERM, and
    kill it only if it still runs after that. A Ctrl-C on the terminal has ``told`` it already."""
    if told and _ended(child, 3.0):
        return
    child.terminate()
    if not _ended(child, 5.0):
        child.kill()
        child.wait()


def _ended(child: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        child.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def _outro(root: Path, seconds: float, serving: bool = False) -> str:
    paths = _paths(root)
    data = Path(paths["data"])
    photos = [p for p in sorted((data / "photos").rglob("*")) if p.is_file()]
    megabytes = sum(p.stat().st_size for p in photos) / 1e6
    lines = [
        f"\nDone in {seconds:.0f} s; the stand-in {'keeps running' if serving else 'is stopped'}. "
        f"What the run left in {root}:",
        f"  {data / 'taxa.csv'}  the names and the taxa they resolved to",
        f"  {data / 'photos'}  {len(photos)} photos ({megabytes:.1f} MB) in "
        f"{len({p.parent for p in photos})} taxon folders",
        f"  {data / 'photos.csv'}  each photo's licence, attribution, observer, place and date",
    ]
    if Path(paths["dataset"]).exists():
        lines.append(f"  {paths['dataset']}  the dataset, split into train, validation and test")
    lines += ["", "A few rows of photos.csv, one per licence:"]
    lines += _manifest_sample(data / "photos.csv")
    lines += [
        "",
        "The default data dir (./inatdl-data) was not touched. Without INATDL_API_URL the same",
        "commands ask iNaturalist itself. Run the demo again to start afresh.",
    ]
    if not serving:
        lines.append("To try the README's other commands offline: python tests/demo.py --serve")
    return "\n".join(lines)


def _serve(inat: InatServer, root: Path, api_rate: float) -> None:
    """Keep the stand-in running until Ctrl-C (or SIGTERM), after saying how to use it."""
    variables = _stand_in_variables(inat, root.resolve(), api_rate)
    species, job = _paths(root)["species"], root / "open-data-job"
    _say(
        "\n".join(
            [
                "",
                "The stand-in keeps running, with the open data of the same world, until Ctrl-C.",
                "In another terminal, these variables point inatdl at it and at the demo's data:",
                "  export " + " ".join(f"{key}={shlex.quote(value)}" for key, value in variables.items()),
                "then try the README's other commands, for example:",
                "  inatdl photos fetch --size square,medium",
                f"  inatdl --data-dir {root / 'place-job'} taxa observed --place-id {PLACE}",
                "  inatdl records fetch --format parquet",
                f"  inatdl dataset export {root / 'shards'} --size medium --format webdataset",
                "  inatdl opendata sync",
                f"  inatdl --data-dir {job} taxa resolve {species} --source open-data",
                f"  inatdl --data-dir {job} photos fetch --source open-data",
            ]
        )
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C or SIGTERM: the demo's normal end here
        while True:
            time.sleep(3600)


def _manifest_sample(
    path: Path, columns: Sequence[str] = ("path", "license_code", "attribution")
) -> list[str]:
    """A few rows of the manifest, each of another licence and taxon."""
    sample: list[dict[str, str]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if all(
                row["license_code"] != s["license_code"] and row["taxon_id"] != s["taxon_id"] for s in sample
            ):
                sample.append(row)
            if len(sample) == 4:
                break
    widths = [max(len(c), *(len(row[c]) for row in sample)) for c in columns]
    return [
        "  " + "  ".join(f"{value:<{width}}" for value, width in zip(values, widths, strict=True)).rstrip()
        for values in [columns, *([row[c] for c in columns] for row in sample)]
    ]


def _say(text: str) -> None:
    """Print now: the child's output comes next on the same terminal."""
    print(text, flush=True)


if __name__ == "__main__":
    sys.exit(main())
