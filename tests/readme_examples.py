"""The README's examples, run for real against the tests' stand-in for iNaturalist.

    python tests/readme_examples.py           # run them; print each line the README gets wrong
    python tests/readme_examples.py --write   # rewrite those lines of README.md from the real runs

An example is a fenced block of README.md just after a comment ``<!-- example: NAME -->``:
lines starting with ``$ inatdl`` are commands, run in order in a folder of their own (with
species.csv, as in a clone) after the hidden setup of EXAMPLES[NAME]; the other lines are
what they print (stdout, then stderr without the progress lines). ``...`` alone on a line
stands for rows left out; a line ending in `` ...`` for the rest of a line left out. Lines
are compared after what varies from run to run is normalised: times and dates.
tests/test_readme.py runs the check; --write keeps every line that matches and replaces
one that does not by the real line of the same shape (its numbers aside).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner
from demo import build_demo_world
from fakes import FakeClock
from inat_server import InatServer

from inatdl.cli import cli
from inatdl.constants import DEFAULT_API_URL

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MARKER = re.compile(r"^<!-- example: ([\w-]+) -->$")
#: Messages the README quotes in its prose (`...`) as well: each must be one a run printed.
QUOTED = ("iNaturalist API not answering",)
DEAD_API = "http://127.0.0.1:9/v1"  # the discard port: connection refused, as with no network
PROGRESS = re.compile(
    r"^(paging the observations of |listing the photos of |\d+ of (about )?\d+ photos handled"
    r"|\d+ photos? to download[:( ]|Listing the taxa)"
)
VARYING = (
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"), "<date and time>"),
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "<time>"),
)


def build_reserve(inat: InatServer) -> None:
    """Four fish and a seagrass observed in a marine reserve (place 128892)."""
    inat.add_taxon(1, "Animalia", rank="kingdom")
    inat.add_taxon(2, "Actinopterygii", rank="class", parent_id=1)
    inat.add_taxon(3, "Plantae", rank="kingdom")
    inat.add_taxon(4, "Posidonia oceanica", parent_id=3)
    fish = ((50663, "Gobius niger", 41), (47843, "Diplodus vulgaris", 23))
    fish += ((50664, "Symphodus tinca", 12), (50665, "Serranus scriba", 7))
    first_id = 1000
    for taxon_id, name, observations in (*fish, (4, "Posidonia oceanica", 9)):
        if taxon_id != 4:
            inat.add_taxon(taxon_id, name, parent_id=2)
        inat.add_observations(taxon_id, observations, first_id=first_id, place_ids=(128892,))
        first_id += observations


def build_names(inat: InatServer) -> None:
    """Names iNaturalist matches through other names of taxa (a nominate trinomial, a French
    common name), in the example's names.csv (written in the folder it runs in)."""
    inat.add_taxon(1, "Animalia", rank="kingdom")
    inat.add_taxon(2, "Plantae", rank="kingdom")
    inat.add_taxon(61299, "Lythrum salicaria", parent_id=2, observations_count=15)
    inat.add_taxon(752716, "Pseudopolybia vespiceps", parent_id=1, observations_count=4)
    inat.add_taxon_name(752716, "Pseudopolybia vespiceps vespiceps")
    inat.add_taxon(362871, "Synanthedon vespiformis", parent_id=1, common_name="Yellow-legged Clearwing")
    inat.add_taxon_name(362871, "Sésie vespiforme", locale="fr")
    names = ("Lythrum salicaria", "Pseudopolybia vespiceps vespiceps", "Sésie vespiforme", "Lythrum theodori")
    Path("names.csv").write_text("\n".join(["Species", *names]) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Example:
    """The world an example runs against, and the commands run before the ones it shows."""

    world: Callable[[InatServer], object] | None  # None: no API at all (no network)
    setup: tuple[str, ...] = ()


RESOLVE = "inatdl taxa resolve species.csv"
EXAMPLES = {
    "quick-start": Example(build_demo_world),
    "offline": Example(None),
    "observed": Example(build_reserve),
    "dry-run": Example(build_demo_world, (RESOLVE,)),
    "export": Example(build_demo_world, (RESOLVE, "inatdl photos fetch --size medium")),
    "budget": Example(build_demo_world, (RESOLVE,)),
    "names": Example(build_names),
    "records-empty": Example(build_reserve),
}


@dataclass
class Shown:
    """An example block of README.md: its commands, and the lines shown for each."""

    name: str
    indent: str  # of the block, inside a list item
    commands: list[tuple[str, list[int]]]  # a command, and the README line numbers of its output


def examples_in(lines: Sequence[str]) -> list[Shown]:
    found: list[Shown] = []
    at = 0
    while at < len(lines):
        marker = MARKER.match(lines[at].strip())
        at += 1
        if marker is None:
            continue
        if at >= len(lines) or not lines[at].strip().startswith("```"):
            raise ValueError(f"README.md line {at}: an example marker not followed by a code block")
        shown = Shown(marker[1], lines[at][: len(lines[at]) - len(lines[at].lstrip())], [])
        at += 1
        while at < len(lines) and not lines[at].strip().startswith("```"):
            if lines[at].strip().startswith("$ inatdl"):
                shown.commands.append((lines[at].strip()[2:], []))
            elif shown.commands:
                shown.commands[-1][1].append(at)
            at += 1
        found.append(shown)
    return found


@contextmanager
def _folder() -> Iterator[Path]:
    """A clone-like folder, the current one meanwhile: species.csv, and nothing else."""
    before = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="inatdl-readme-") as folder:
        shutil.copy(REPO / "species.csv", folder)
        os.chdir(folder)
        try:
            yield Path(folder)
        finally:
            os.chdir(before)


def run_example(example: Example, commands: Sequence[str]) -> list[list[str]]:
    """What each of ``commands`` prints, run after the example's setup. The random part of
    the API's retry waits is seeded: it decides how many retries the notice promises."""
    random.seed(0)
    with InatServer() as inat, _folder():
        api_url = DEAD_API
        if example.world is not None:
            example.world(inat)
            api_url = inat.api_url
        outputs = []
        for command in (*example.setup, *commands):
            words = command.split()[1:]  # the README's commands quote nothing
            result = CliRunner().invoke(
                cli,
                words,
                env={"INATDL_API_URL": api_url, "INATDL_DATA_DIR": None, "INATDL_API_RATE": None},
                obj={"clock": FakeClock(), "timeout": (1.0, 1.0)},
            )
            stderr = [line for line in result.stderr.splitlines() if not PROGRESS.match(line)]
            printed = [*result.stdout.splitlines(), *stderr]
            outputs.append([line.replace(api_url, DEFAULT_API_URL) for line in printed])
    return outputs[len(example.setup) :]


def _normal(line: str) -> str:
    for pattern, stands_for in VARYING:
        line = pattern.sub(stands_for, line)
    return line.rstrip()


def _shape(line: str) -> str:
    """A line with its numbers and spacing left out: the row a real line replaces."""
    return " ".join(re.sub(r"\d[\d.,]*", "#", _normal(line)).split())


def _matches(shown: str, real: str) -> bool:
    if shown.endswith(" ..."):
        return _normal(real).startswith(_normal(shown[:-4]))
    return _normal(shown) == _normal(real)


def compare(lines: list[str], numbers: list[int], real: list[str], indent: str, fix: bool) -> list[str]:
    """The README's lines at ``numbers`` (in a block indented by ``indent``) against the
    ``real`` output, in order; with ``fix`` a line that does not match is replaced in
    ``lines`` by the real one of its shape."""
    problems: list[str] = []
    at, gap = 0, False
    for number in numbers:
        shown = lines[number].removeprefix(indent).rstrip()
        if shown.strip() == "...":
            gap = True
            continue
        window = real[at:] if gap else real[at : at + 1]
        hit = next((i for i, line in enumerate(window) if _matches(shown, line)), None)
        if hit is None:
            same_shape = [i for i, line in enumerate(window) if _shape(line) == _shape(shown)]
            if fix and same_shape:
                hit = same_shape[0]
                lines[number] = indent + window[hit] + (" ..." if shown.endswith(" ...") else "")
            else:
                expected = "\n    ".join(window[:3]) if window else "(nothing more)"
                problems.append(f"README.md line {number + 1}: {shown}\n  the real output:\n    {expected}")
                at += 0 if gap else 1  # the line it stands for, so the next ones are not all told
                continue
        at += hit + 1
        gap = False
    if not gap and at < len(real):
        problems.append(
            f"README.md line {numbers[-1] + 1 if numbers else '?'}: more output follows: {real[at]}"
        )
    return problems


def check_quotes(lines: list[str], printed: list[str], fix: bool) -> list[str]:
    """The messages of QUOTED in the prose (`...`) against the lines the runs ``printed``."""
    problems: list[str] = []
    for number, line in enumerate(lines):
        for quote in re.findall(r"`([^`]+)`", line):
            if not quote.startswith(QUOTED) or any(_normal(quote) == _normal(p) for p in printed):
                continue
            same_shape = [p for p in printed if _shape(p) == _shape(quote)]
            if fix and same_shape:
                lines[number] = line.replace(f"`{quote}`", f"`{same_shape[0]}`")
            else:
                problems.append(f"README.md line {number + 1}: `{quote}` is not what a run printed")
    return problems


def check(readme: Path = README, fix: bool = False) -> list[str]:
    """Every example of ``readme`` run; the lines that differ (rewritten in place with ``fix``)."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    problems: list[str] = []
    printed: list[str] = []
    for shown in examples_in(lines):
        if shown.name not in EXAMPLES:
            problems.append(f"README.md: no example named {shown.name!r} in tests/readme_examples.py")
            continue
        outputs = run_example(EXAMPLES[shown.name], [command for command, _ in shown.commands])
        for (command, numbers), real in zip(shown.commands, outputs, strict=True):
            found = compare(lines, numbers, real, shown.indent, fix)
            problems += [f"{shown.name}: $ {command}\n{p}" for p in found]
            printed += real
    problems += check_quotes(lines, printed, fix)
    if fix:
        readme.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tests/readme_examples.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--write", action="store_true", help="rewrite README.md's lines from the real runs")
    options = parser.parse_args(argv)
    problems = check(fix=options.write)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
