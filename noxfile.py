"""Test sessions, run the same way by contributors and by CI (`.ci/run`).

`nox` runs the tests on every supported Python this machine has (missing ones are
skipped) and the linters; `nox -s tests-3.13` runs one interpreter; `nox -s minimums` runs
the tests against the oldest dependency versions pyproject.toml admits; `nox -s loaders`
reads the export's formats with the real webdataset, datasets and mlcroissant; `nox -s
img2dataset` downloads a `photos plan` with the real img2dataset (and Spark).
"""

from __future__ import annotations

import nox

#: The Pythons inatdl supports: keep in step with requires-python and the classifiers.
PYTHONS = ["3.11", "3.12", "3.13"]

nox.options.sessions = ["tests", "lint"]
nox.options.error_on_missing_interpreters = False  # a machine with one Python still runs


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The README's test command, in a fresh environment of this Python."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHONS[0])
def minimums(session: nox.Session) -> None:
    """The oldest Python with the oldest versions of the runtime dependencies we claim."""
    session.install("-e", ".[test]", "-c", "tests/constraints-minimums.txt")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """ruff and mypy --strict, as CI runs them."""
    session.install("-e", ".[test]")
    session.run("ruff", "check", ".")
    session.run("mypy", "--strict", "src/inatdl")


@nox.session(python=PYTHONS[0])
def loaders(session: nox.Session) -> None:
    """The export's three formats read by the real loaders: webdataset, datasets, mlcroissant."""
    session.install("-e", ".[test,loaders]")
    session.run("pytest", "-m", "loaders", *session.posargs)


@nox.session(python=PYTHONS[0])
def demo(session: nox.Session) -> None:
    """The README's "Try it without a network": after a plain install, as the README says."""
    session.install(".")
    session.run("python", "tests/demo.py", *session.posargs)


@nox.session(python=PYTHONS[0])
def img2dataset(session: nox.Session) -> None:
    """The real img2dataset downloads a `photos plan` as it is, from the test server: the
    command `photos plan` prints, the README's one-machine command and its Spark script on a
    local Spark (which needs Java). A large install (pyspark alone is ~450 MB), so not one of
    the default sessions."""
    session.install("-e", ".", "img2dataset", "pyspark")
    quiet = {"NO_ALBUMENTATIONS_UPDATE": "1"}  # no update check over the network at each import
    session.run("python", "tests/img2dataset_check.py", *session.posargs, env=quiet)
