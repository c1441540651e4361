"""Everything inatdl shows: tables, summaries, progress bars, wait lines, rerun commands.

The library returns reports and never prints; the CLI hands them here. Results go to
stdout (nothing under --quiet), what went wrong and progress to stderr. Lines are written
with click.echo, the writer Click's test runner captures.

One module a command (taxa, photos, records, dataset, opendata: its tables and summaries),
progress.py for the live bars and log lines, console.py for what they all share (where
lines go, the rerun commands, the `Error:` line, a reader leaving early).
"""
