"""The command groups (taxa, photos, records, dataset, opendata) and where each command lives.

A command's module, and the library behind it, is imported only when that command runs or
its help is asked (Click's "lazy loading subcommands", done in the group's `commands`):
`photos fetch` from the API never loads the export's, the open data's or the records' code,
and `inatdl --help` none of them. So each group's help is here; its commands' help stays
with their code (cli/<group>.py).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from importlib import import_module

import click

from inatdl.cli.settings import CONTEXT, EXIT_INTERRUPTED
from inatdl.output.console import show_error


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands by name (Click's ``Group.commands``), each imported from its
    "module:attribute" when it is looked up. Every name is known without an
    import, so Click's listing, its "Did you mean" and its completion see them all."""

    def __init__(self, where: dict[str, str]) -> None:
        self._where = where
        self._added: dict[str, click.Command] = {}  # by add_command, as objects

    def __getitem__(self, name: str) -> click.Command:
        if name in self._added:
            return self._added[name]
        return _import_command(self._where[name])  # a module imported once is in sys.modules

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._added[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._where.pop(name, None)
        self._added.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._where or name in self._added

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._where, *self._added]))

    def __len__(self) -> int:
        return len(self._where.keys() | self._added.keys())


def _import_command(where: str) -> click.Command:
    module_name, attribute = where.split(":")
    try:
        module = import_module(module_name)
    except KeyboardInterrupt:  # as the entry point's own import of the CLI
        show_error("interrupted while starting; nothing was done")
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    command = getattr(module, attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{where} is not a click command")
    return command


@click.group(
    context_settings=CONTEXT,
    commands=LazyCommands(
        {"resolve": "inatdl.cli.taxa:taxa_resolve", "observed": "inatdl.cli.taxa:taxa_observed"}
    ),
)
def taxa() -> None:
    """Choose the taxa to download: from a list of names, or those observed in a place
    (writes taxa.csv).

    \b
    Example:
      inatdl taxa resolve species.csv
      inatdl taxa observed --place-id 128892
    """


@click.group(
    context_settings=CONTEXT,
    commands=LazyCommands(
        {"fetch": "inatdl.cli.photos:photos_fetch", "plan": "inatdl.cli.photos:photos_plan"}
    ),
)
def photos() -> None:
    """The photos of the resolved taxa: download them (fetch: photos/ and photos.csv), or
    write the list a cluster downloads them from (plan: a Parquet file for img2dataset).

    \b
    Example:
      inatdl photos fetch --size medium
      inatdl photos plan plan.parquet --size medium
    """


@click.group(context_settings=CONTEXT, commands=LazyCommands({"fetch": "inatdl.cli.records:records_fetch"}))
def records() -> None:
    """The observation records themselves, as Darwin Core (writes records.csv).

    \b
    Example:
      inatdl records fetch --place-id 128892
    """


@click.group(context_settings=CONTEXT, commands=LazyCommands({"export": "inatdl.cli.dataset:dataset_export"}))
def dataset() -> None:
    """Turn the downloaded photos into a dataset that ML tools load as it is.

    \b
    Example:
      inatdl dataset export my-dataset --split train=0.8,validation=0.1,test=0.1
    """


@click.group(context_settings=CONTEXT, commands=LazyCommands({"sync": "inatdl.cli.opendata:opendata_sync"}))
def opendata() -> None:
    """iNaturalist's monthly open data: bulk jobs with no API request.

    \b
    Example:
      inatdl opendata sync
      inatdl photos fetch --source open-data --size medium
    """


GROUPS = (taxa, photos, records, dataset, opendata)
