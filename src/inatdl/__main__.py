"""The `inatdl` command (`python -m inatdl` too).

Importing the command line takes about half a second; a Ctrl-C in it ends the command as a
Ctrl-C later does, in one line with exit code 130, never with Python's traceback.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # as cli.settings.EXIT_INTERRUPTED, which this must not import first


def main() -> None:
    try:
        from inatdl.cli import cli
    except KeyboardInterrupt:
        print("Error: interrupted while starting; nothing was done", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    cli()


if __name__ == "__main__":
    main()
