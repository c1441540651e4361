"""The command line: turns options into a call, the result into output's lines, and an exit code.

This module holds the command (`cli`, run by the entry point `inatdl.__main__:main`): the
group, its global options (taken after the command too) and the one error boundary.
groups.py holds the command groups, whose commands each have their module (taxa, photos,
records, dataset, opendata), imported only when the command runs or its help is asked;
options.py holds the option types and the options several commands share; settings.py what
every command runs with.
"""

from __future__ import annotations

import math
import traceback
from pathlib import Path
from typing import Any, NoReturn

import click

from inatdl import __version__
from inatdl.cli.groups import GROUPS
from inatdl.cli.options import HttpUrl, Rate
from inatdl.cli.settings import CONTEXT, EXIT_INTERRUPTED, Settings
from inatdl.constants import DEFAULT_API_RATE, DEFAULT_API_URL, DEFAULT_DATA_DIR
from inatdl.errors import InatdlError
from inatdl.opendata import DEFAULT_OPEN_DATA_URL, default_open_data_dir
from inatdl.output.console import reader_may_leave, setup_logging, show_error


class InatdlGroup(click.Group):
    """Turns the library's errors into one line and the contract's exit codes, and takes
    the global options after the command too (`inatdl taxa resolve x.csv --data-dir y`)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        with reader_may_leave():
            return super().main(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _globals_first(self, ctx, args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InatdlError as exc:
            _fail(ctx, str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail(ctx, "interrupted; the same command resumes", EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            _fail(
                ctx,
                f"unexpected {type(exc).__name__}: {exc} (run with -v for details, and please report it)",
                1,
            )


def _options(command: click.Command) -> dict[str, click.Parameter]:
    return {name: p for p in command.params for name in (*p.opts, *p.secondary_opts)}


def _takes_value(param: click.Parameter, word: str) -> bool:
    """True when ``word`` (an option of ``param``) is followed by its value as a word apart."""
    return "=" not in word and not (isinstance(param, click.Option) and param.is_flag)


def _globals_first(group: click.Group, ctx: click.Context, args: list[str]) -> list[str]:
    """``args`` with the global options given after the command moved before it, where
    Click reads them; the last one given wins, as ever. An option of the command's own
    that bears the same name, anything after ``--``, and words Click refuses anyway are
    left where they are."""
    globals_ = _options(group)
    start = 0  # the command's name
    while start < len(args) and args[start].startswith("-"):
        global_option = globals_.get(args[start].split("=", 1)[0])
        if global_option is None:
            return args
        start += 2 if _takes_value(global_option, args[start]) else 1
    command: click.Command = group
    end = start  # past the command's name (and its group's)
    while isinstance(command, click.Group) and end < len(args):
        found = command.get_command(ctx, args[end])
        if found is None:
            return args
        command, end = found, end + 1
    own = _options(command)
    moved: list[str] = []
    kept: list[str] = []
    at = end
    while at < len(args):
        name = args[at].split("=", 1)[0]
        if args[at] == "--":
            kept += args[at:]
            break
        ours = name in globals_ and name not in own
        option = globals_[name] if ours else own.get(name)
        step = 2 if option is not None and _takes_value(option, args[at]) else 1
        if ours and at + step > len(args):
            raise click.BadOptionUsage(name, f"Option '{name}' requires an argument.", ctx)
        (moved if ours else kept).extend(args[at : at + step])
        at += step
    return [*args[:start], *moved, *args[start:end], *kept]


def _fail(ctx: click.Context, message: str, code: int) -> NoReturn:
    settings = ctx.find_object(Settings)
    if settings is not None and settings.verbose:
        traceback.print_exc()
    show_error(message)
    ctx.exit(code)


def _finite(value: float, param: click.Parameter) -> float:
    if not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of requests a second", param=param)
    return value


@click.group(cls=InatdlGroup, context_settings=CONTEXT, commands=GROUPS)
@click.version_option(__version__, "--version", prog_name="inatdl")
@click.option(
    "--data-dir",
    envvar="INATDL_DATA_DIR",
    default=DEFAULT_DATA_DIR,
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where taxa.csv, photos/, photos.csv and the state live [env: INATDL_DATA_DIR].",
)
@click.option(
    "--api-url",
    envvar="INATDL_API_URL",
    metavar="URL",
    type=HttpUrl(DEFAULT_API_URL),
    default=DEFAULT_API_URL,
    show_default=True,
    help="The iNaturalist API base [env: INATDL_API_URL].",
)
@click.option(
    "--api-rate",
    envvar="INATDL_API_RATE",
    default=DEFAULT_API_RATE,
    show_default=True,
    type=Rate(min=0, min_open=True),
    callback=lambda ctx, param, value: _finite(value, param),
    help="Most API requests per second; iNaturalist asks for about 1 [env: INATDL_API_RATE].",
)
@click.option(
    "--open-data-url",
    envvar="INATDL_OPEN_DATA_URL",
    metavar="URL",
    type=HttpUrl(DEFAULT_OPEN_DATA_URL),
    default=DEFAULT_OPEN_DATA_URL,
    show_default=True,
    help="The open data's base: <url>/<table>.csv.gz and <url>/photos/... [env: INATDL_OPEN_DATA_URL].",
)
@click.option(
    "--open-data-dir",
    envvar="INATDL_OPEN_DATA_DIR",
    type=click.Path(path_type=Path),
    help="Where `opendata sync` keeps the tables, shared by every data dir [default: the user's cache "
    "folder, e.g. ~/.cache/inatdl/open-data; env: INATDL_OPEN_DATA_DIR].",
)
@click.option(
    "-v", "--verbose", "--debug", "verbose", is_flag=True, help="Debug logs, and tracebacks with errors."
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.pass_context
def cli(
    ctx: click.Context,
    data_dir: Path,
    api_url: str,
    api_rate: float,
    open_data_url: str,
    open_data_dir: Path | None,
    verbose: bool,
    quiet: bool,
) -> None:
    """Build image datasets of species from iNaturalist photos, licence-aware and resumable.

    The options below may come before the command or after it.

    \b
    Example (two commands, in one folder; run the second again to resume):
      inatdl taxa resolve species.csv
      inatdl photos fetch --size medium
    """
    overrides = ctx.obj if isinstance(ctx.obj, dict) else {}
    ctx.obj = Settings(data_dir, api_url, api_rate, verbose, quiet, **overrides)
    ctx.obj.open_data_url = open_data_url
    ctx.obj.open_data_dir = open_data_dir or default_open_data_dir()
    setup_logging(verbose, quiet)
