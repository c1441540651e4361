"""README.md (the dataset card, with the YAML header the Hugging Face hub reads) and
CREDITS.md, written from the report and the format's writer."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from inatdl import __version__
from inatdl.export.licences import LICENSE_TERMS, hub_licence, licence_url
from inatdl.export.model import ExportOptions, ExportReport
from inatdl.export.writers import Writer
from inatdl.manifest import obscured_note

if TYPE_CHECKING:
    from inatdl.export.selected import Selection

CARD_NAME = "README.md"
CREDITS_NAME = "CREDITS.md"
#: The hub's size classes: (upper bound, name).
SIZE_CATEGORIES = (
    (1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"),
)  # fmt: skip
#: What Markdown would read as markup in a credit: an underscore only at a word's edge.
_MARKDOWN_MARKUP = re.compile(r"[\\`*<>\[\]]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
#: Where each format keeps a photo's licence and attribution, for the card's words.
_ROWS_IN = {
    "imagefolder": "`metadata.csv` (`license_code`, `attribution`)",
    "webdataset": "each sample's `json` (`license_code`, `attribution`)",
}


def dataset_card(
    report: ExportReport, options: ExportOptions, writer: Writer, title: str, selection: Selection
) -> str:
    """README.md: the hub's header, what the dataset holds, how it was made, how to load it,
    what the licences ask."""
    return front_matter(report, writer, title) + card_body(report, options, writer, title, selection)


def front_matter(report: ExportReport, writer: Writer, title: str) -> str:
    """The YAML header: licence, task, size, name, each split's files (and, where the loader
    would infer them from the first samples, the features)."""
    codes = [entry.code for entry in report.licences]
    hub = [hub_licence(code) for code in codes]
    lines = ["---"]
    if len(codes) == 1 and hub[0] is not None:
        lines.append(f"license: {hub[0]}")
    else:
        listed = ", ".join(
            f"{h or licence_url(c)} ({e.photos:,} photos)"
            for c, h, e in zip(codes, hub, report.licences, strict=True)
        )
        lines += [
            "license: other",
            "license_name: inaturalist-photo-licences",
            f"license_link: {CREDITS_NAME}",
            f"license_details: {_quoted(f'Each photo keeps its own licence: {listed}; see {CREDITS_NAME}.')}",
        ]
    size = next((name for bound, name in SIZE_CATEGORIES if report.photos < bound), "n>100M")
    lines += [
        "task_categories:",
        "- image-classification",
        "size_categories:",
        f"- {_quoted(size)}",
        f"pretty_name: {_quoted(title)}",
        "configs:",
        "- config_name: default",
        "  data_files:",
    ]
    for split, pattern in writer.data_files().items():
        lines += [f"  - split: {split}", f"    path: {_quoted(pattern)}"]
    features = writer.features()
    if features is not None:
        lines += ["dataset_info:", "  features:", *_yaml_list(features, "  ")]
    return "\n".join([*lines, "---", ""])


def _yaml_list(items: Sequence[dict[str, object]], indent: str) -> list[str]:
    """A list of mappings (of text, or of such lists) as block YAML."""
    lines = []
    for item in items:
        prefix = f"{indent}- "
        for key, value in item.items():
            if isinstance(value, list):
                lines += [f"{prefix}{key}:", *_yaml_list(value, indent + "  ")]
            else:
                lines.append(f"{prefix}{key}: {_quoted(str(value))}")
            prefix = f"{indent}  "
    return lines


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is one)."""
    return json.dumps(text, ensure_ascii=False)


def card_body(
    report: ExportReport, options: ExportOptions, writer: Writer, title: str, selection: Selection
) -> str:
    names = list(report.split_names)
    lines = [
        f"# {title}",
        "",
        f"{report.photos:,} photos of {len(report.taxa):,} taxa from "
        f"[iNaturalist](https://www.inaturalist.org), from {report.observations:,} observations "
        f"by {len(report.observers):,} observers, at size `{report.size}`. "
        f"Made with inatdl {__version__}:",
        "",
        "```",
        options.command,
        "```",
        "",
        "## Loading",
        "",
        *writer.loading(title),
        *obscured_note(selection.value_counts.get("coordinates_obscured")),
    ]
    if names:
        shares = ", ".join(f"{name} {share:g}" for name, share in options.splits)
        lines += [
            "",
            "## Splits",
            "",
            f"Drawn per {options.group_by}: the photos of one {options.group_by} are all in the same split. "
            f"Each {options.group_by} is placed by a hash of its id and the seed ({options.seed}) "
            f"against the shares {shares}, so exporting again gives the same splits and new "
            "photos never move old ones.",
        ]
    lines += ["", *_counts(report, options), "", *_licences(report)]
    return "\n".join(lines)


def _counts(report: ExportReport, options: ExportOptions) -> list[str]:
    names = list(report.split_names)
    lines = ["## Photos per taxon", ""]
    header = ["taxon", *names, "total" if names else "photos", f"{options.group_by}s"]
    lines += [_row(header), _row(["---"] + ["---:"] * (len(header) - 1))]
    for taxon in report.taxa:
        counts = [f"{taxon.photos[n]:,}" for n in names]
        lines.append(_row([taxon.label, *counts, f"{taxon.total:,}", f"{taxon.groups:,}"]))
    if names:
        totals = [f"{report.photos_in(n):,}" for n in names]
        lines.append(_row(["**all**", *totals, f"{report.photos:,}", f"{report.groups:,}"]))
    if report.empty_splits:
        empty = " or ".join(report.empty_splits)
        where = "no folder" if report.format == "imagefolder" else "no files"
        lines += ["", f"No photo landed in {empty}: {where} for {'them' if ' or ' in empty else 'it'}."]
    if report.short:
        short = "; ".join(
            f"{label} ({groups} {options.group_by}{'s' if groups != 1 else ''}, none in {', '.join(empty)})"
            for label, groups, empty in report.short
        )
        lines += ["", f"Taxa with too few groups for every split: {short}."]
    if report.left_out:
        left_out = ", ".join(f"{label} ({n})" for label, n in report.left_out)
        lines += ["", f"Left out, fewer than {options.min_per_taxon} photos: {left_out}."]
    if report.capped:
        capped = ", ".join(f"{label} (of {n})" for label, n in report.capped)
        lines += ["", f"Kept at most {options.max_per_taxon} photos of {capped}, one of each group first."]
    return lines


def _licences(report: ExportReport) -> list[str]:
    rows_in = _ROWS_IN.get(report.format, "the `license_code` and `attribution` columns")
    lines = [
        "## Licences",
        "",
        f"Every photo keeps its own licence; each is in {rows_in} "
        f"and in [{CREDITS_NAME}]({CREDITS_NAME}) with a link to its observation.",
        "",
        _row(["licence", "photos", "what it asks of you"]),
        _row(["---", "---:", "---"]),
    ]
    for entry in report.licences:
        name, slug, terms = LICENSE_TERMS.get(entry.code, (entry.code, "", "see the licence"))
        lines.append(
            _row([f"[{name}]({licence_url(entry.code)})" if slug else name, f"{entry.photos:,}", terms])
        )
    codes = {entry.code for entry in report.licences}
    if any("nc" in c.split("-") for c in codes):
        lines += [
            "",
            "NC: no commercial use of these photos. For a commercial model, leave them out by "
            "`license_code`, or fetch into a data dir of its own with `inatdl --data-dir DIR photos "
            "fetch --license cc0,cc-by,cc-by-sa,cc-by-nd` and export that: a data dir keeps every "
            "photo it downloaded, whatever the `--license` of later runs.",
        ]
    if any("nd" in c.split("-") for c in codes):
        lines += [
            "",
            "ND: sharing altered versions (crops, augmented images) is not allowed; whether a trained "
            "model is a derivative is unsettled, so check before publishing one.",
        ]
    return [
        *lines,
        "",
        "Publishing this dataset or a model trained on it: credit each photographer as in "
        f"[{CREDITS_NAME}]({CREDITS_NAME}) and keep each photo's licence with it.",
        "",
    ]


def write_credits(handle: TextIO, selection: Selection) -> None:
    """CREDITS.md: every photo, its attribution, licence and observation (written row by
    row: a million photos' credits are a few hundred MB of text)."""
    lines = [
        "# Credits",
        "",
        "Every photo of this dataset, from iNaturalist, with its photographer's attribution and licence.",
        "",
        _row(["photo", "taxon", "attribution", "licence", "observation"]),
        _row(["---:", "---", "---", "---", "---"]),
    ]
    handle.write("\n".join(lines) + "\n")
    at = [selection.columns.index(c) for c in ("attribution", "license_code", "observation_url")]
    for photo in selection.photos(selection.credited()):
        attribution, licence, url = (photo.values[i] for i in at)
        handle.write(_row([photo.photo_id, _plain(photo.label), _plain(attribution), licence, url]) + "\n")


@functools.lru_cache(maxsize=1 << 14)  # the credits repeat each taxon and attribution
def _plain(text: str) -> str:
    """``text`` shown as written by Markdown: a name such as ``<Jane>`` or ``*JD*`` would
    otherwise vanish or turn italic in the credit (an underscore inside a word is safe)."""
    return _MARKDOWN_MARKUP.sub(lambda match: "\\" + match.group(0), text)


def _row(cells: Sequence[object]) -> str:
    line = " | ".join(map(str, cells))
    if line.count("|") == len(cells) - 1 and "\n" not in line:  # nothing to escape: most rows
        return f"| {line} |"
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"
